"""Simulated host life cycle: reboot, agent crash, clean shutdown, stale processes, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import zeep
from click.testing import CliRunner

from soapattest.cli.main import cli
from soapattest.errors import SimulationError, UnsupportedSimLogError
from soapattest.sim import SimCluster, SimHost
from soapattest.sim.catalog import load_log
from soapattest.sim.process import port_open, reap_stale
from soapattest.tpm.attest import parse_attest
from soapattest.tpm.eventlog import parse_event_log, replay
from tests.conftest import EVENTLOG_DIR
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]

LOG = "gotpmtools_glinux-alex"  # StartupLocality 3: PCR 0 starts at 3


def alive(pid: int | None) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def procs_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmd and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def quote(host: SimHost) -> tuple[int, dict[int, bytes]]:
    """(resetCount, sha256 PCRs 0-7) from a fresh quote."""
    q = zeep.Client(host.agent_url + "?wsdl").service.GetQuote(
        nonce=b"n", selection=[{"bank": "sha256", "pcr": list(range(8))}])
    return parse_attest(q.attest).clock_info.reset_count, {p.index: p.value for p in q.banks[0].pcr}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    with SimCluster(tmp_path_factory.mktemp("sim-life"), agent_log_level="WARNING") as c:
        yield c


def test_restart_increments_reset_count_and_replays_again(cluster: SimCluster) -> None:
    host = cluster.start_host("reboot", log=LOG)
    expected = replay(parse_event_log(host.eventlog_path.read_bytes()))["sha256"]
    resets, pcrs = quote(host)
    assert pcrs == {i: expected[i] for i in range(8)}
    assert pcrs[0] != bytes(32)  # locality-3 start visible in PCR 0
    old_swtpm = host.swtpm.pid
    cluster.restart_host("reboot")
    resets_after, pcrs_after = quote(host)
    assert resets_after == resets + 1
    assert pcrs_after == pcrs
    assert host.boot_count == 2
    assert not alive(old_swtpm)
    cluster.stop_host("reboot")


def test_kill_agent_then_start_again(cluster: SimCluster) -> None:
    host = cluster.start_host("crash", log=LOG)
    resets_before, pcrs_before = quote(host)
    pid, url = host.agent_pid, host.agent_url
    host.kill_agent()
    assert not alive(pid)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "?wsdl", timeout=5)
    assert alive(host.swtpm.pid)  # the TPM keeps running
    host.start_agent()
    assert quote(host) == (resets_before, pcrs_before)  # no reboot happened
    cluster.stop_host("crash")


def test_inventory_lists_hosts(cluster: SimCluster) -> None:
    host = cluster.start_host("inv", log=LOG, ak_type="rsa")
    inv = json.loads(cluster.inventory_path.read_text())
    entry = next(h for h in inv["hosts"] if h["name"] == "inv")
    assert entry["agent_url"] == host.agent_url
    assert entry["agent_pid"] == host.agent_pid and entry["swtpm_pid"] == host.swtpm.pid
    assert entry["ak_type"] == "rsa" and entry["log"] == LOG
    assert inv["ca_root_cert"] == str(cluster.ca_root_cert)
    cluster.stop_host("inv")
    inv = json.loads(cluster.inventory_path.read_text())
    assert "inv" not in [h["name"] for h in inv["hosts"]]


def test_close_leaves_no_process_and_frees_ports(tmp_path: Path) -> None:
    cluster = SimCluster(tmp_path, agent_log_level="WARNING")
    hosts = cluster.start_hosts([], parallel=2)
    assert hosts == []
    a = cluster.start_host("a", log=LOG)
    b = cluster.start_host("b", log="gotpmtools_debian-10", tamper="pcr")
    pids = [a.agent_pid, a.swtpm.pid, b.agent_pid, b.swtpm.pid]
    ports = [a.agent_port, a.swtpm.port, a.swtpm.ctrl_port, b.agent_port, b.swtpm.port]
    assert all(alive(p) for p in pids)
    assert all(port_open(p) for p in ports)
    cluster.close()
    assert [alive(p) for p in pids] == [False] * 4
    assert procs_mentioning(str(tmp_path)) == []
    assert [port_open(p) for p in ports] == [False] * 5
    cluster.close()  # idempotent
    with pytest.raises(SimulationError):
        cluster.start_host("late", log=LOG)


def test_processes_of_a_killed_run_are_reaped(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from soapattest.sim import SimCluster\n"
        "c = SimCluster(sys.argv[1], agent_log_level='WARNING')\n"
        "c.start_host('orphan', log='gotpmtools_debian-10')\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                            stdout=subprocess.PIPE, start_new_session=True)
    pids: list[int] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        inv = json.loads((tmp_path / "inventory.json").read_text())
        pids = [inv["hosts"][0]["swtpm_pid"], inv["hosts"][0]["agent_pid"]]
        proc.send_signal(signal.SIGKILL)  # no atexit, no cleanup: children survive
        proc.wait(10)
        assert all(alive(p) for p in pids)
        with SimCluster(tmp_path):  # reopening the directory reaps them
            deadline = time.monotonic() + 10
            while any(alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [alive(p) for p in pids] == [False, False]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        reap_stale(pids, str(tmp_path))  # whatever happened above, leave nothing behind


def test_start_hosts_reports_failures(cluster: SimCluster) -> None:
    from soapattest.sim import HostSpec

    with pytest.raises(UnsupportedSimLogError):
        cluster.start_hosts([HostSpec("ok-1", LOG), HostSpec("bad-1", "no-such-log")])
    assert "bad-1" not in cluster.hosts
    assert cluster.host("ok-1").agent_pid is not None
    with pytest.raises(SimulationError, match="already running"):
        cluster.start_host("ok-1", log=LOG)
    cluster.stop_host("ok-1")


@pytest.mark.parametrize("name", ["", "-x", "a/b", "x" * 64])
def test_bad_host_names_refused(cluster: SimCluster, name: str) -> None:
    with pytest.raises(SimulationError, match="invalid host name"):
        cluster.start_host(name, log=LOG)


def test_unsupported_logs_are_refused_with_a_reason() -> None:
    with pytest.raises(UnsupportedSimLogError) as err:
        load_log(EVENTLOG_DIR / "goattest_short_no_action.bin")
    assert err.value.reason == "the log extends no PCR"
    with pytest.raises(UnsupportedSimLogError) as err:
        load_log(EVENTLOG_DIR / "bad" / "goattest_event_size_too_large.bin")
    assert err.value.code == "Client.UnsupportedEventLog"
    name, raw, log = load_log(EVENTLOG_DIR / "goattest_sb_cert.bin")  # positive twin
    assert name == "goattest_sb_cert" and log.banks == ("sha1", "sha256", "sha384") and raw


def test_cli_list_logs_json() -> None:
    result = CliRunner().invoke(cli, ["sim", "list-logs", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["name"] for r in rows} >= {"gotpmtools_rhel8-uefi", "gotpmtools_glinux-alex"}
    assert all(r["simulatable"] for r in rows)
    ima = [r for r in rows if r["ima"]]
    assert [r["name"] for r in ima] == ["imaverify_vm_binary_bios_measurements"]


def test_cli_start_no_wait(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "soapattest"), "sim", "start", "--hosts", "2",
         "--log", "gotpmtools_debian-10", "--tamper", "host-002", "--dir", str(tmp_path),
         "--no-wait", "--agent-log-level", "WARNING"],
        capture_output=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "host-001" in out and "host-002" in out and "Stopped 2 host(s)" in out
    inv = json.loads((tmp_path / "inventory.json").read_text())
    assert [h["tamper"] for h in inv["hosts"]] == [None, "event"]
    assert procs_mentioning(str(tmp_path)) == []


def test_cli_start_unknown_tamper_host(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sim", "start", "--hosts", "1", "--tamper", "host-009",
                                      "--dir", str(tmp_path), "--no-wait"])
    assert result.exit_code == 2
    assert "host-009" in result.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_start_runs_until_signalled(tmp_path: Path, sig: int) -> None:
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "soapattest"), "sim", "start", "--hosts", "1",
         "--log", "gotpmtools_debian-10", "--dir", str(tmp_path), "--agent-log-level",
         "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(b"Running"):
                break
        assert lines and lines[-1].startswith(b"Running"), b"".join(lines)
        inv = json.loads((tmp_path / "inventory.json").read_text())
        url = inv["hosts"][0]["agent_url"]
        assert requests.get(url + "?wsdl", timeout=10).status_code == 200
        proc.send_signal(sig)
        assert proc.wait(60) == 0
        assert b"Stopped 1 host(s)" in proc.stdout.read()
        assert procs_mentioning(str(tmp_path)) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        reap_stale(procs_mentioning(str(tmp_path)), str(tmp_path))
