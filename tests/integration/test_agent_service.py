"""The agent process itself: command line, logs served, IMA chunks, HTTP guard, WSDL, stop.

An agent is started by hand (``python -m soapattest.agent.main`` with flags)
on the swtpm of a simulated host whose own agent is stopped, with a small IMA
chunk size and request limit.
"""

from __future__ import annotations

import hashlib
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

from soapattest.agent.wsdl import canonical_wsdl
from soapattest.sim import SimCluster, SimHost
from soapattest.tpm.ima import parse_ima_binary
from tests.conftest import ROOT
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]

CHUNK = 4096
MAX_REQUEST = 2048
NS = "urn:soapattest:agent:v1"


def fault_code(exc: zeep.exceptions.Fault) -> str:
    return str(exc.code).rpartition(":")[2]


class Agent:
    """A hand-started agent process."""

    def __init__(self, host: SimHost, workdir: Path, **flags: str) -> None:
        self.port_file = workdir / "agent.port"
        self.log = workdir / "agent.log"
        argv = [sys.executable, "-m", "soapattest.agent.main", "--tcti", host.swtpm.tcti,
                "--listen", "127.0.0.1:0", "--port-file", str(self.port_file)]
        for flag, value in flags.items():
            argv += [f"--{flag.replace('_', '-')}", value]
        self.proc = subprocess.Popen(argv, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"agent did not start: {self.log.read_text()}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{int(self.port_file.read_text())}/"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    with SimCluster(tmp_path_factory.mktemp("agent-svc"), agent_log_level="WARNING") as c:
        yield c


@pytest.fixture(scope="module")
def host(cluster: SimCluster) -> SimHost:
    h = cluster.start_host("svc", log="imaverify_vm_binary_bios_measurements", ima=True)
    h.stop_agent()  # the hand-started agent below takes the swtpm
    return h


@pytest.fixture(scope="module")
def spare(cluster: SimCluster) -> SimHost:
    """A second host for tests that start agents of their own (a swtpm serves one client)."""
    h = cluster.start_host("spare", log="gotpmtools_arch-linux-workstation")
    h.stop_agent()
    return h


@pytest.fixture(scope="module")
def agent(host: SimHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    with Agent(host, tmp_path_factory.mktemp("agent-proc"), eventlog=str(host.eventlog_path),
               ima_log=str(host.ima_path), ima_chunk_max=str(CHUNK),
               max_request_bytes=str(MAX_REQUEST), log_level="INFO") as a:
        yield a


@pytest.fixture
def client(agent: Agent) -> zeep.Client:
    return zeep.Client(agent.url + "?wsdl")


# ------------------------------------------------------------------ logs


def test_event_log_served_equals_file(client: zeep.Client, host: SimHost) -> None:
    assert client.service.GetEventLog() == host.eventlog_path.read_bytes()


def test_a_quote_names_the_event_log_it_would_serve(client: zeep.Client, host: SimHost) -> None:
    quote = client.service.GetQuote(nonce=b"n", selection=[{"bank": "sha256", "pcr": [0]}])
    served = client.service.GetEventLog()
    assert quote.event_log_sha256 == hashlib.sha256(served).digest()
    assert quote.event_log_sha256 != hashlib.sha256(served + b"x").digest()


def test_ima_log_fetched_incrementally(client: zeep.Client, host: SimHost) -> None:
    whole = host.ima_path.read_bytes()
    assert len(whole) > 10 * CHUNK
    got, offset, calls = b"", 0, 0
    while True:
        chunk = client.service.GetImaLog(offset=offset)
        calls += 1
        assert len(chunk.data) <= CHUNK
        assert chunk.next_offset == offset + len(chunk.data)
        # each chunk ends on an entry boundary: it parses on its own
        assert parse_ima_binary(chunk.data, template_hash_alg="sha256").entries
        got += chunk.data
        offset = chunk.next_offset
        if not chunk.more:
            break
    assert got == whole
    assert calls >= len(whole) // CHUNK
    end = client.service.GetImaLog(offset=len(whole))
    assert (end.data or b"", end.next_offset, end.more) == (b"", len(whole), False)


def test_ima_offset_past_end_is_a_fault(client: zeep.Client, host: SimHost) -> None:
    size = host.ima_path.stat().st_size
    with pytest.raises(zeep.exceptions.Fault) as err:
        client.service.GetImaLog(offset=size + 1)
    assert fault_code(err.value) == "Client.InvalidArgument"


def test_missing_logs_are_server_faults(spare: SimHost, tmp_path: Path) -> None:
    with Agent(spare, tmp_path, eventlog=str(tmp_path / "none.bin"),
               ima_log=str(tmp_path / "none_ima")) as a:
        c = zeep.Client(a.url + "?wsdl")
        with pytest.raises(zeep.exceptions.Fault) as err:
            c.service.GetEventLog()
        assert fault_code(err.value) == "Server.EventLogUnavailable"
        with pytest.raises(zeep.exceptions.Fault) as err:
            c.service.GetImaLog(offset=0)
        assert fault_code(err.value) == "Server.ImaLogUnavailable"
        assert c.service.GetIdentity().ak_name  # the agent itself still works
        quote = c.service.GetQuote(nonce=b"n", selection=[{"bank": "sha256", "pcr": [0]}])
        assert quote.attest and quote.event_log_sha256 is None  # no log: quotes still work
        assert a.stop() == 0


# ------------------------------------------------------------------ HTTP and SOAP plumbing


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:a="{NS}"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>'
    ).encode()


def _post(agent: Agent, data: bytes) -> requests.Response:
    return requests.post(agent.url, data=data, timeout=30,
                         headers={"Content-Type": "text/xml; charset=utf-8"})


def _faultcode(resp: requests.Response) -> str:
    from lxml import etree

    root = etree.fromstring(resp.content, etree.XMLParser(resolve_entities=False))
    return str(root.findtext(".//faultcode")).rpartition(":")[2]


def test_small_request_accepted(agent: Agent) -> None:
    resp = _post(agent, _envelope("<a:GetEventLog/>"))
    assert resp.status_code == 200
    assert b"GetEventLogResponse" in resp.content


def test_oversized_request_refused(agent: Agent) -> None:
    padding = "<!-- " + "x" * MAX_REQUEST + " -->"
    resp = _post(agent, _envelope(padding + "<a:GetEventLog/>"))
    assert resp.status_code == 413
    assert _faultcode(resp) == "Client.RequestTooLarge"


def test_dtd_refused(agent: Agent) -> None:
    doc = _envelope("<a:GetEventLog/>").replace(
        b"<soapenv:Envelope", b'<!DOCTYPE x [<!ENTITY e "boom">]><soapenv:Envelope', 1)
    resp = _post(agent, doc)
    assert resp.status_code == 400
    assert _faultcode(resp) == "Client.InvalidArgument"


def test_garbage_is_a_client_fault_without_traceback(agent: Agent) -> None:
    resp = _post(agent, b"<not-soap")
    assert resp.status_code == 500
    assert _faultcode(resp).startswith("Client")
    assert b"Traceback" not in resp.content


def test_live_wsdl_is_the_committed_one(agent: Agent) -> None:
    live = requests.get(agent.url + "?wsdl", timeout=30).content
    assert canonical_wsdl(live) == (ROOT / "wsdl" / "agent.wsdl").read_bytes()


def test_requests_are_logged_and_sigterm_stops_cleanly(spare: SimHost, tmp_path: Path) -> None:
    with Agent(spare, tmp_path, eventlog=str(spare.eventlog_path), log_level="INFO") as a:
        c = zeep.Client(a.url + "?wsdl")
        c.service.GetQuote(nonce=b"n", selection=[{"bank": "sha256", "pcr": [0]}])
        with pytest.raises(zeep.exceptions.Fault):
            c.service.GetQuote(nonce=b"", selection=[{"bank": "sha256", "pcr": [0]}])
        assert a.stop() == 0
    text = a.log.read_text()
    assert "op=GetQuote peer=127.0.0.1 outcome=ok" in text
    assert "op=GetQuote peer=127.0.0.1 outcome=Client.InvalidArgument" in text
    assert "received SIGTERM" in text and "stopped" in text
    assert "Traceback" not in text


def test_bad_configuration_exits_2(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "soapattest.agent.main", "--ak-handle", "0x1"],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 2
    assert b"Client.InvalidConfiguration" in done.stderr


def test_unreachable_tpm_exits_1(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "soapattest.agent.main", "--tcti",
                           "swtpm:host=127.0.0.1,port=1", "--listen", "127.0.0.1:0"],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 1
    assert b"cannot open the TPM" in done.stderr or b"TpmError" in done.stderr


def test_help_lists_every_option() -> None:
    done = subprocess.run([sys.executable, "-m", "soapattest.agent.main", "--help"],
                          capture_output=True, timeout=60, check=True)
    for flag in ("--config", "--listen", "--port-file", "--tcti", "--ak-type", "--ak-handle",
                 "--eventlog", "--ima-log", "--ima-chunk-max", "--max-request-bytes",
                 "--quote-attempts", "--log-level"):
        assert flag.encode() in done.stdout
