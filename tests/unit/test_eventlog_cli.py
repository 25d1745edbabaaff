"""``soapattest eventlog show|replay`` through CliRunner, and once through the entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from soapattest.cli.eventlog import eventlog
from tests.unit.test_eventlog_support import BAD_LOGS, EXPECTED, path

SAMPLE = [
    "gotpmtools_gdc-host.bin",
    "goattest_windows_gcp_shielded_vm.bin",
    "small/tpm2tools_event-uefivar.bin",
    "tpm2tools_event-moklisttrusted.bin",
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(eventlog, list(args))
    return result.exit_code, result.stdout, result.stderr


def consensus(name: str) -> dict[str, dict[str, str]]:
    return {b: v for b, v in EXPECTED[name]["consensus_pcrs"].items() if v}


@pytest.mark.parametrize("name", SAMPLE)
def test_replay_json(name: str) -> None:
    status, out, err = run("replay", str(path(name)), "--json")
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "format": EXPECTED[name]["format"],
        "events": EXPECTED[name]["event_count"],
        "pcrs": consensus(name),
    }


def test_replay_json_one_bank() -> None:
    name = "gotpmtools_rhel8-uefi.bin"
    status, out, _ = run("replay", str(path(name)), "--json", "--bank", "sha384")
    assert status == 0
    assert json.loads(out)["pcrs"] == {"sha384": consensus(name)["sha384"]}


def test_replay_of_a_bank_the_log_lacks_is_refused() -> None:
    status, out, err = run("replay", str(path("gotpmtools_gdc-host.bin")), "--bank", "sha1")
    assert (status, out) == (2, "")
    assert err.startswith("soapattest: Client.InvalidEventLog: the event log has no complete sha1")


def test_replay_table() -> None:
    name = "gotpmtools_glinux-alex.bin"
    status, out, _ = run("replay", str(path(name)))
    assert status == 0
    for bank, pcrs in consensus(name).items():
        assert bank in out
        for value in pcrs.values():
            assert value in out


@pytest.mark.parametrize("name", BAD_LOGS)
def test_malformed_log_exits_2_with_one_line(name: str) -> None:
    for command in ("replay", "show"):
        status, out, err = run(command, str(path(name)))
        assert (status, out) == (2, "")
        assert err.count("\n") == 1
        assert err.startswith("soapattest: Client.InvalidEventLog: event ")
        assert "Traceback" not in err


def test_missing_file_exits_2_with_one_line(tmp_path: Path) -> None:
    status, out, err = run("replay", str(tmp_path / "absent.bin"))
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert "No such file or directory" in err


def test_show_json_lists_every_event() -> None:
    name = "gotpmtools_glinux-alex.bin"
    status, out, _ = run("show", str(path(name)), "--json")
    assert status == 0
    doc = json.loads(out)
    assert (doc["format"], doc["banks"], doc["startup_locality"]) == (
        "crypto_agile",
        ["sha1", "sha256"],
        3,
    )
    assert len(doc["events"]) == EXPECTED[name]["event_count"]
    first, locality = doc["events"][0], doc["events"][1]
    assert first["type"] == "EV_NO_ACTION" and first["extends"] is False
    assert locality["summary"] == "StartupLocality 3"
    assert set(doc["events"][5]["digests"]) == {"sha1", "sha256"}


def test_show_json_pcr_filter() -> None:
    status, out, _ = run("show", str(path("gotpmtools_glinux-alex.bin")), "--json", "--pcr", "7")
    assert status == 0
    events = json.loads(out)["events"]
    assert events
    assert {e["pcr"] for e in events} == {7}
    assert "EV_SEPARATOR" in {e["type"] for e in events}


def test_show_table() -> None:
    status, out, _ = run("show", str(path("goattest_sb_cert.bin")), "--pcr", "7")
    assert status == 0
    assert "EV_EFI_VARIABLE_DRIVER_CONFIG" in out
    assert "SecureBoot (EFI_GLOBAL_VARIABLE): enabled" in out
    assert "sha384:" in out
    assert "EV_EFI_GPT_EVENT" not in out  # PCR 5


def test_installed_entry_point() -> None:
    exe = Path(sys.executable).parent / "soapattest"
    assert exe.exists(), "the soapattest console script is not installed (pip install -e .)"
    name = "gotpmtools_gdc-host.bin"
    ok = subprocess.run(
        [str(exe), "eventlog", "replay", str(path(name)), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert json.loads(ok.stdout)["pcrs"] == consensus(name)
    bad = subprocess.run(
        [str(exe), "eventlog", "replay", str(path(BAD_LOGS[0]))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr.count("\n") == 1
