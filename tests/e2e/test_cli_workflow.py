"""The client commands end to end: ``soapattest host|whitelist|policy|attest|report|poll|
assertion|pool|placement|audit|nonce`` against a real server subprocess and three real
simulated hosts (host-3 boots a tampered event)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner, Result

from soapattest.cli.hosts import _attest
from soapattest.cli.main import cli
from soapattest.server.saml import verify_assertion
from tests.e2e.server_fixture import RunningServer, attest_server, free_port  # noqa: F401

pytestmark = pytest.mark.swtpm

POOL = "pool-a"
PASSWORD_VAR = "SOAPATTEST_E2E_PASSWORD"
CLIENT_COMMANDS = [
    ["host", "add"],
    ["host", "list"],
    ["host", "show"],
    ["host", "update"],
    ["host", "reenroll"],
    ["host", "remove"],
    ["attest"],
    ["poll"],
    ["nonce"],
    ["whitelist", "import"],
    ["whitelist", "create"],
    ["whitelist", "list"],
    ["whitelist", "show"],
    ["whitelist", "diff"],
    ["whitelist", "add"],
    ["whitelist", "remove"],
    ["whitelist", "delete"],
    ["policy", "create"],
    ["policy", "update"],
    ["policy", "assign"],
    ["policy", "list"],
    ["policy", "show"],
    ["policy", "delete"],
    ["report", "list"],
    ["report", "show"],
    ["assertion"],
    ["pool", "list"],
    ["pool", "trusted"],
    ["placement"],
    ["audit", "list"],
]


class Cli:
    """Runs ``soapattest`` in-process against one server, with an isolated environment."""

    def __init__(self, server: RunningServer, home: Path) -> None:
        self.server = server
        self.env: dict[str, str | None] = {
            "XDG_CONFIG_HOME": str(home),
            "SOAPATTEST_URL": None,
            "SOAPATTEST_USER": None,
            "SOAPATTEST_PASSWORD": None,
            "SOAPATTEST_CLIENT_CONFIG": None,
            PASSWORD_VAR: server.password,
        }
        self.connection = ["--url", server.url]
        if server.username:
            self.connection += ["--user", server.username, "--password-env", PASSWORD_VAR]

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(
            cli, [*args, *self.connection], env=self.env, catch_exceptions=False
        )

    def json(self, *args: str, status: int = 0) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == status, result.output
        return json.loads(result.stdout)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def run(
    attest_server: RunningServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Cli:
    return Cli(attest_server, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def flow(run: Cli) -> Iterator[SimpleNamespace]:
    """The main workflow, through the CLI: register host-1..3, import whitelist 'golden'
    from host-1, create a policy for pool-a, attest every host."""
    agents = {n: h.agent_url for n, h in run.server.cluster.hosts.items()}
    added = [
        run.json("host", "add", name, agents[name], "--pool", POOL, "--label", f"rack=r{name[-1]}")
        for name in ("host-1", "host-2", "host-3")
    ]
    golden = run.json("whitelist", "import", "host-1", "golden", "--pcr", "0-7")
    policy = run.json(
        "policy", "create", "golden-policy", "--whitelist", "golden", "--bank", "sha256"
    )
    assigned = run.json("policy", "assign", "golden-policy", "--pool", POOL)
    attested = run.json("attest", "--pool", POOL, status=1)  # host-3 is not TRUSTED
    yield SimpleNamespace(
        agents=agents,
        added=added,
        golden=golden,
        policy=policy,
        assigned=assigned,
        attested={t["host"]: t for t in attested},
    )


# ------------------------------------------------------------------ hosts


def test_host_add_list_show(run: Cli, flow: SimpleNamespace) -> None:
    assert [h["name"] for h in flow.added] == ["host-1", "host-2", "host-3"]
    assert all(h["ak_name"] and h["ek_certificate_pem"] for h in flow.added)
    listed = run.json("host", "list")
    assert [h["name"] for h in listed] == ["host-1", "host-2", "host-3"]
    assert {h["effective_policy"] for h in listed} == {"golden-policy"}
    shown = run.json("host", "show", "host-2")
    assert (shown["pool"], shown["labels"]) == (POOL, {"rack": "r2"})
    table = ok(run("host", "list")).stdout
    assert all(name in table for name in ("host-1", "host-2", "host-3"))


def test_host_add_duplicate_is_refused(run: Cli, flow: SimpleNamespace) -> None:
    result = run("host", "add", "host-1", flow.agents["host-1"])
    assert result.exit_code == 2
    assert result.stderr.startswith("soapattest: Client.AlreadyExists: ")
    assert len(result.stderr.splitlines()) == 1


def test_host_update_and_remove(run: Cli, flow: SimpleNamespace) -> None:
    spare = run.server.cluster.start_host("host-4")
    run.json("host", "add", "host-4", spare.agent_url)
    updated = run.json(
        "host", "update", "host-4", "--label", "role=spare", "--description", "standby"
    )
    assert (updated["labels"], updated["description"]) == ({"role": "spare"}, "standby")
    assert run.json("host", "reenroll", "host-4")["ak_name"]
    assert run.json("host", "remove", "host-4") == {"host": "host-4", "deleted": True}
    gone = run("host", "show", "host-4")
    assert gone.exit_code == 2
    assert "Client.UnknownHost" in gone.stderr
    run.server.cluster.stop_host("host-4")


# ------------------------------------------------------------------ whitelists and policies


def test_whitelist_import_show_and_copy(run: Cli, flow: SimpleNamespace, tmp_path: Path) -> None:
    assert flow.golden["source_host"] == "host-1"
    assert flow.golden["entry_count"] == len(flow.golden["entries"]) > 0
    assert {e["pcr"] for e in flow.golden["entries"]} <= set(range(8))
    shown = run.json("whitelist", "show", "golden")
    assert shown["entries"] == flow.golden["entries"]
    saved = tmp_path / "golden.json"
    saved.write_text(ok(run("whitelist", "show", "golden", "--json")).stdout)
    copy = run.json("whitelist", "create", "golden-copy", str(saved))
    assert copy["entries"] == shown["entries"]
    same = run.json("whitelist", "diff", "golden", "golden-copy")
    assert (same["added"], same["removed"]) == ([], [])
    listed = {w["name"]: w for w in run.json("whitelist", "list")}
    assert listed["golden-copy"]["entry_count"] == shown["entry_count"]


def test_whitelist_diff_of_a_tampered_host(run: Cli, flow: SimpleNamespace) -> None:
    bad = run.json("whitelist", "import", "host-3", "from-host-3", "--pcr", "0-7")
    diff = run.json("whitelist", "diff", "golden", "from-host-3")

    def keys(entries: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {(e["kind"], e["bank"], e["pcr"], e["digest"]) for e in entries}

    good, other = keys(flow.golden["entries"]), keys(bad["entries"])
    assert keys(diff["added"]) == other - good
    assert keys(diff["removed"]) == good - other
    assert diff["added"] and diff["removed"]
    table = ok(run("whitelist", "diff", "golden", "from-host-3")).stdout
    assert f"{len(diff['added'])} added, {len(diff['removed'])} removed" in table


def test_whitelist_versions_and_csv(run: Cli, flow: SimpleNamespace, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    first.write_text(json.dumps(flow.golden["entries"][:2]))
    run.json("whitelist", "create", "versions", str(first))
    extra = tmp_path / "extra.csv"
    extra.write_text("kind,bank,pcr,digest,label\npcr,sha256,15," + "0f" * 32 + ",spare\n")
    v2 = run.json("whitelist", "add", "versions", str(extra), "--expected-version", "1")
    assert v2["version"] == 2
    diff = run.json("whitelist", "diff", "versions", "--from", "1", "--to", "2")
    assert diff["removed"] == []
    assert [(e["pcr"], e["digest"]) for e in diff["added"]] == [(15, "0f" * 32)]
    stale = run("whitelist", "add", "versions", str(extra), "--expected-version", "1")
    assert stale.exit_code == 2 and "Client.VersionConflict" in stale.stderr
    v3 = run.json("whitelist", "remove", "versions", str(extra))
    assert v3["entry_count"] == 2
    assert run.json("whitelist", "delete", "versions")["deleted"] is True


def test_policy_create_assign_show(run: Cli, flow: SimpleNamespace, tmp_path: Path) -> None:
    # A second whitelist of its own (tests of this module may run on other xdist workers,
    # each with its own server, so no test relies on another one's objects).
    saved = tmp_path / "golden.json"
    saved.write_text(ok(run("whitelist", "show", "golden", "--json")).stdout)
    run.json("whitelist", "create", "golden-alt", str(saved))
    assert flow.policy["whitelists"] == [{"name": "golden", "version": None}]
    assert flow.assigned == {"policy": "golden-policy", "pool": POOL, "assigned": True}
    shown = run.json("policy", "show", "golden-policy")
    assert (shown["version"], shown["banks"], shown["combine"]) == (1, ["sha256"], "ALL_OF")
    created = run.json(
        "policy",
        "create",
        "strict",
        "--whitelist",
        "golden@1",
        "--whitelist",
        "golden-alt",
        "--combine",
        "ANY_OF",
        "--secure-boot",
        "--ima",
        "integrity",
    )
    assert created["secure_boot"]["require_enabled"] is True
    assert created["ima"]["mode"] == "integrity"
    updated = run.json("policy", "update", "strict", "--no-secure-boot", "--description", "relaxed")
    assert (updated["version"], updated["secure_boot"], updated["description"]) == (
        2,
        None,
        "relaxed",
    )
    assert updated["whitelists"] == created["whitelists"]
    assert "strict" in {p["name"] for p in run.json("policy", "list")}
    assert run.json("policy", "delete", "strict")["deleted"] is True
    missing = run("policy", "create", "broken", "--whitelist", "no-such-whitelist")
    assert missing.exit_code == 2 and "Client.WhitelistNotFound" in missing.stderr


# ------------------------------------------------------------------ attestation and reports


def test_attest_trusted_and_tampered(run: Cli, flow: SimpleNamespace) -> None:
    statuses = {h: t["status"] for h, t in flow.attested.items()}
    assert statuses == {"host-1": "TRUSTED", "host-2": "TRUSTED", "host-3": "UNTRUSTED"}
    good = run("attest", "host-1", "host-2")
    assert good.exit_code == 0, good.output
    assert "TRUSTED" in good.stdout and "UNTRUSTED" not in good.stdout
    mixed = run("attest", "host-1", "nope")
    assert mixed.exit_code == 1
    assert "Client.UnknownHost" in mixed.stdout


def test_report_show_explains_untrusted(run: Cli, flow: SimpleNamespace) -> None:
    report = flow.attested["host-3"]["report"]
    failing = [c for c in report["checks"] if c["status"] == "FAIL"]
    assert failing
    shown = run("report", "show", str(report["report_id"]))
    assert shown.exit_code == 1
    assert "UNTRUSTED" in shown.stdout and "Failing events" in shown.stdout
    for check in failing:
        assert check["id"] in shown.stdout
        assert check["reason"][:40] in shown.stdout
    events = {c["event_index"] for c in failing if c["event_index"] is not None}
    assert events and all(f"event {i}" in shown.stdout for i in events)
    assert run.json("report", "show", "--host", "host-3", status=1)["status"] == "UNTRUSTED"
    trusted = run("report", "show", str(flow.attested["host-1"]["report"]["report_id"]))
    assert trusted.exit_code == 0 and "Failing events" not in trusted.stdout
    listed = run.json("report", "list", "--host", "host-3", "--status", "UNTRUSTED")
    assert listed["total"] >= 1
    assert {r["host"] for r in listed["reports"]} == {"host-3"}


def test_poll(run: Cli, flow: SimpleNamespace) -> None:
    cached = run.json("poll", "--pool", POOL, "--max-age", "3600", status=1)
    assert {t["host"]: t["cached"] for t in cached} == {
        "host-1": True,
        "host-2": True,
        "host-3": True,
    }
    fresh = run.json("poll", "host-1", "--max-age", "0")
    assert [(t["host"], t["cached"], t["status"]) for t in fresh] == [("host-1", False, "TRUSTED")]


def test_assertion_verify(run: Cli, flow: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "host-1.saml.xml"
    result = ok(run("assertion", "host-1", "--verify", "--out", str(out)))
    assert "signature OK" in result.stdout
    cert = run.server.client().get_signing_certificate()
    assert verify_assertion(out.read_bytes(), cert).host == "host-1"
    doc = run.json("assertion", "host-1", "--verify")
    assert (doc["verified"], doc["attributes"]["trust_status"]) == (True, "TRUSTED")
    bad = run("assertion", "host-3", "--verify")
    assert bad.exit_code == 1
    assert "UNTRUSTED" in bad.stderr  # the verified verdict
    assert "<saml2:Assertion" in bad.stdout


def test_pool_trusted_and_placement(run: Cli, flow: SimpleNamespace) -> None:
    pool = run.json("pool", "trusted", POOL)
    assert pool["trusted"] == ["host-1", "host-2"]
    assert {d["host"]: d["allowed"] for d in pool["decisions"]} == {
        "host-1": True,
        "host-2": True,
        "host-3": False,
    }
    assert run.json("pool", "trusted", POOL, "--label", "rack=r2")["trusted"] == ["host-2"]
    pools = {p["name"]: p for p in run.json("pool", "list")}
    assert (pools[POOL]["policy"], pools[POOL]["host_count"]) == ("golden-policy", 3)
    allowed = run.json("placement", "host-1")
    assert allowed["allowed"] is True
    denied = run.json("placement", "host-3", status=1)
    assert denied["allowed"] is False and denied["reasons"]
    assert run.json("placement", "host-1", "--label", "rack=r9", status=1)["allowed"] is False


def test_audit_and_nonce(run: Cli, flow: SimpleNamespace) -> None:
    records = run.json("audit", "list", "--action", "host.register")
    assert {r["target"] for r in records["records"]} >= {"host-1", "host-2", "host-3"}
    first, second = ok(run("nonce", "host-1")).stdout.strip(), run.json("nonce", "host-1")
    assert len(bytes.fromhex(first)) == 32
    assert second["nonce"] != first


# ------------------------------------------------------------------ errors and help


def soapattest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a subprocess."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOAPATTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "soapattest", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
        check=False,
    )


def test_unknown_host_exits_2_with_the_fault_line(
    run: Cli, flow: SimpleNamespace, tmp_path: Path
) -> None:
    done = soapattest(
        "host",
        "show",
        "nope",
        *run.connection,
        env={"XDG_CONFIG_HOME": str(tmp_path), PASSWORD_VAR: run.server.password or ""},
    )
    assert done.returncode == 2
    assert done.stderr == "soapattest: Client.UnknownHost: no host named 'nope'\n"
    found = soapattest(
        "host",
        "show",
        "host-1",
        "--json",
        *run.connection,
        env={"XDG_CONFIG_HOME": str(tmp_path), PASSWORD_VAR: run.server.password or ""},
    )
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["name"] == "host-1"


def test_server_down_exits_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    done = soapattest("host", "list", env={"SOAPATTEST_URL": url, "XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.startswith("soapattest: Server.Unreachable: ")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_no_url_exits_2(tmp_path: Path) -> None:
    done = soapattest("pool", "list", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 2
    assert "no server URL" in done.stderr


def test_client_config_file_is_used(run: Cli, flow: SimpleNamespace, tmp_path: Path) -> None:
    conf = tmp_path / "soapattest" / "client.conf"
    conf.parent.mkdir()
    lines = ["[client]", f"url = {run.server.url}", "timeout = 20"]
    if run.server.username:
        (conf.parent / "password").write_text(f"{run.server.password}\n")
        lines += [f"user = {run.server.username}", "password_file = password"]
    conf.write_text("\n".join(lines) + "\n")
    env = {**run.env, "XDG_CONFIG_HOME": str(tmp_path)}
    result = CliRunner().invoke(cli, ["pool", "list", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert POOL in {p["name"] for p in json.loads(result.stdout)}
    # a flag overrides the file: an unreachable URL fails
    dead = f"http://127.0.0.1:{free_port()}/"
    result = CliRunner().invoke(cli, ["pool", "list", "--url", dead], env=env)
    assert result.exit_code == 1
    assert "Server.Unreachable" in result.stderr


def test_wrong_password_exits_2(run: Cli, flow: SimpleNamespace) -> None:
    if not run.server.username:
        pytest.skip("the server does not require credentials")
    env = {**run.env, PASSWORD_VAR: "not-the-password"}
    result = CliRunner().invoke(cli, ["pool", "list", *run.connection], env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("soapattest: Client.NotAuthorized: ")


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=" ".join)
def test_help_is_complete(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    for option in (
        "--url",
        "--user",
        "--password-env",
        "--password-file",
        "--ca",
        "--timeout",
        "--client-config",
        "--json",
    ):
        assert option in result.stdout
    assert "SOAPATTEST_URL" in result.stdout  # the precedence is documented


def test_main_help_lists_client_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in {c[0] for c in CLIENT_COMMANDS}:
        assert f"  {name} " in result.stdout
    assert "SOAPATTEST_URL" in result.stdout


def test_bulk_attest_with_progress(run: Cli, flow: SimpleNamespace) -> None:
    names = ["host-1", "host-2", "host-3", *(f"missing-{i}" for i in range(5))]
    with run.server.client() as client:
        results = _attest(client, names, show_progress=True, chunk=3)
    assert [r.host for r in results] == names
    assert [r.status.value if r.status else r.fault_code for r in results] == [
        "TRUSTED",
        "TRUSTED",
        "UNTRUSTED",
        *["Client.UnknownHost"] * 5,
    ]
