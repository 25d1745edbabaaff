"""``soapattest ima replay`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from soapattest.cli.ima import ima
from tests.conftest import IMA_DIR
from tests.unit.test_ima_support import EXPECTED, LISTS, SHA1_LIST, read_pcr_dump


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(ima, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", LISTS)
def test_replay_json_matches_the_expected_values(name: str) -> None:
    status, out, err = run("replay", str(IMA_DIR / name), "--json")
    assert (status, err) == (0, "")
    summary = json.loads(out)
    expected = EXPECTED[name]["replay"]
    assert summary["entries"] == expected["entries"]
    assert summary["violations"] == expected["violations"]
    assert summary["templates"] == expected["templates"]
    assert summary["boot_aggregate"] == expected["boot_aggregate"]
    assert summary["template_digest_mismatches"] == 0
    assert summary["pcrs"] == {
        bank: {"10": v["10"]} for bank, v in EXPECTED[name]["expected"]["values"].items()
    }


def test_replay_text_prints_every_requested_bank() -> None:
    status, out, _ = run(
        "replay", str(IMA_DIR / SHA1_LIST), "--bank", "sha1", "--bank", "sha256",
        "--binary-template-alg", "sha1",
    )  # fmt: skip
    assert status == 0
    dump = read_pcr_dump(IMA_DIR / "imaverify_vm_800ce6c_pcrs_sha1.txt")
    assert f"PCR 10 sha1: {dump['sha1'][10].hex()}" in out.splitlines()
    assert f"PCR 10 sha256: {dump['sha256'][10].hex()}" in out.splitlines()
    assert f"entries: {EXPECTED[SHA1_LIST]['replay']['entries']}" in out.splitlines()
    assert "violations: 0" in out.splitlines()
    assert f"boot_aggregate: {EXPECTED[SHA1_LIST]['replay']['boot_aggregate']}" in out


def test_wrong_binary_template_alg_is_a_malformed_list(tmp_path: Path) -> None:
    status, out, err = run("replay", str(IMA_DIR / SHA1_LIST), "--binary-template-alg", "sha256")
    assert status == 2 and out == ""
    assert err.startswith("soapattest: Client.InvalidImaLog: entry 0")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\n", b"10 00 ima-ng\n", b"\x0a\x00\x00\x00\x01"],
    ids=["empty", "text", "short-digest", "truncated-binary"],
)
def test_malformed_input_exits_2_with_one_stderr_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "list"
    path.write_bytes(content)
    status, out, err = run("replay", str(path))
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("soapattest: Client.InvalidImaLog: ")


def test_truncated_list_is_accepted_with_allow_partial(tmp_path: Path) -> None:
    data = (IMA_DIR / SHA1_LIST).read_bytes()
    path = tmp_path / "list"
    path.write_bytes(data[:-10])
    assert run("replay", str(path))[0] == 2
    status, out, _ = run("replay", str(path), "--allow-partial", "--json")
    assert status == 0
    summary = json.loads(out)
    assert summary["entries"] == EXPECTED[SHA1_LIST]["replay"]["entries"] - 1
    assert summary["trailing_partial"] > 10


def test_missing_file_exits_2(tmp_path: Path) -> None:
    status, _, err = run("replay", str(tmp_path / "absent"))
    assert status == 2
    assert "absent" in err and len(err.splitlines()) == 1


def test_unknown_bank_is_a_usage_error() -> None:
    status, _, err = run("replay", str(IMA_DIR / SHA1_LIST), "--bank", "md5")
    assert status == 2
    assert "md5" in err


def test_main_cli_has_the_ima_group() -> None:
    main = pytest.importorskip("soapattest.cli.main")
    result = CliRunner().invoke(main.cli, ["ima", "replay", "--help"])
    assert result.exit_code == 0
    assert "--binary-template-alg" in result.stdout
