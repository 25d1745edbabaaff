"""Simulated hosts look like the real machines: quoted PCRs == replay of the served log.

One host per bundled log (started two at a time), plus the tampered modes and
the IMA host. Quotes are fetched over HTTP from each host's agent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import zeep

from soapattest.sim import HostSpec, SimCluster, SimHost
from soapattest.sim.boot import tamper_digest, tamper_target
from soapattest.sim.catalog import bundled_logs
from soapattest.tpm.attest import parse_attest
from soapattest.tpm.eventlog import parse_event_log, replay
from soapattest.tpm.ima import parse_ima, replay_ima
from soapattest.tpm.pcr import PcrSelection, pcr_digest
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]

LOGS = [b.name for b in bundled_logs()]
TAMPER_LOG = "gotpmtools_ubuntu-2104-no-secure-boot"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    with SimCluster(tmp_path_factory.mktemp("sim-replay"), agent_log_level="WARNING") as c:
        specs = [HostSpec(f"log{i}", name) for i, name in enumerate(LOGS)]
        specs += [
            HostSpec("tamper-event", TAMPER_LOG, tamper="event"),
            HostSpec("tamper-pcr", TAMPER_LOG, tamper="pcr"),
            HostSpec("ima", "imaverify_vm_binary_bios_measurements", ima=True),
        ]
        c.start_hosts(specs, parallel=2)
        yield c


def quote_all(host: SimHost) -> tuple[dict[str, dict[int, bytes]], Any]:
    """Quote all 24 PCRs of every bank of the host; returns (values, parsed attest)."""
    client = zeep.Client(host.agent_url + "?wsdl")
    nonce = os.urandom(16)
    sel = {b: list(range(24)) for b in host.plan.banks}
    q = client.service.GetQuote(nonce=nonce,
                                selection=[{"bank": b, "pcr": p} for b, p in sel.items()])
    values = {bv.bank: {p.index: p.value for p in bv.pcr} for bv in q.banks}
    attest = parse_attest(q.attest)
    assert attest.extra_data == nonce
    assert attest.quote is not None
    assert attest.quote.pcr_digest == pcr_digest("sha256", PcrSelection.from_mapping(sel), values)
    return values, attest


def served_replay(host: SimHost) -> dict[str, dict[int, bytes]]:
    raw = zeep.Client(host.agent_url + "?wsdl").service.GetEventLog()
    return replay(parse_event_log(raw))


def mismatches(quoted: dict[str, dict[int, bytes]], replayed: dict[str, dict[int, bytes]],
               also: dict[str, dict[int, bytes]] | None = None) -> list[tuple[str, int]]:
    """PCRs whose quoted value differs from the replay (or from ``also``).

    PCRs neither the replay nor ``also`` names must hold their reset value
    (zeros; all-ones for the DRTM PCRs 17-22).
    """
    out = []
    for bank, values in quoted.items():
        for pcr, value in values.items():
            expected = (also or {}).get(bank, {}).get(pcr, replayed[bank].get(pcr))
            if expected is None:
                expected = (b"\xff" if 17 <= pcr <= 22 else b"\0") * len(value)
            if value != expected:
                out.append((bank, pcr))
    return out


@pytest.mark.parametrize("index", range(len(LOGS)), ids=LOGS)
def test_quote_equals_replay_of_served_log(cluster: SimCluster, index: int) -> None:
    host = cluster.host(f"log{index}")
    quoted, _ = quote_all(host)
    replayed = served_replay(host)
    assert set(quoted) == set(replayed) == set(parse_event_log(
        host.eventlog_path.read_bytes()).banks)
    assert mismatches(quoted, replayed) == []


def test_served_log_is_the_bundled_file(cluster: SimCluster) -> None:
    for i, name in enumerate(LOGS):
        host = cluster.host(f"log{i}")
        source = next(b.path for b in bundled_logs() if b.name == name)
        assert host.eventlog_path.read_bytes() == source.read_bytes()


def test_tamper_event_mode_replays_but_event_differs(cluster: SimCluster) -> None:
    host = cluster.host("tamper-event")
    quoted, _ = quote_all(host)
    served = parse_event_log(host.eventlog_path.read_bytes())
    assert mismatches(quoted, replay(served)) == []
    original = parse_event_log(next(b.path for b in bundled_logs()
                                    if b.name == TAMPER_LOG).read_bytes())
    target = tamper_target(original)
    assert target is not None and target.index == host.plan.tampered_event
    assert target.pcr == 4 and target.untrusted_type == 0x80000003
    changed = [e.index for e, o in zip(served.events, original.events, strict=True)
               if e.digests != o.digests]
    assert changed == [target.index]
    tampered = served.events[target.index]
    assert {b: tampered.digests[b] for b in served.banks} == {
        b: tamper_digest(b, target.digests[b]) for b in served.banks}
    # the real log does not replay to this host's PCR 4
    assert {pcr for _, pcr in mismatches(quoted, replay(original))} == {4}


def test_tamper_pcr_mode_fails_replay_in_pcr4_only(cluster: SimCluster) -> None:
    host = cluster.host("tamper-pcr")
    quoted, _ = quote_all(host)
    served = host.eventlog_path.read_bytes()
    assert served == next(b.path for b in bundled_logs() if b.name == TAMPER_LOG).read_bytes()
    bad = mismatches(quoted, served_replay(host))
    assert {pcr for _, pcr in bad} == {4}
    assert {bank for bank, _ in bad} == set(host.plan.banks)


def test_ima_host_pcr10_equals_ima_replay(cluster: SimCluster) -> None:
    host = cluster.host("ima")
    quoted, _ = quote_all(host)
    client = zeep.Client(host.agent_url + "?wsdl")
    data, offset, more = b"", 0, True
    while more:
        chunk = client.service.GetImaLog(offset=offset)
        data, offset, more = data + chunk.data, chunk.next_offset, chunk.more
    ima = parse_ima(data)
    assert ima.entries[0].path == "boot_aggregate"
    pcr10 = replay_ima(ima.entries, "sha256")
    assert pcr10 == quoted["sha256"][10]
    assert mismatches(quoted, served_replay(host), {"sha256": {10: pcr10}}) == []
    assert mismatches(quoted, served_replay(host)) == [("sha256", 10)]


def test_hosts_have_distinct_identities(cluster: SimCluster) -> None:
    names = set()
    eks = set()
    for i in range(3):
        ident = zeep.Client(cluster.host(f"log{i}").agent_url + "?wsdl").service.GetIdentity()
        names.add(ident.ak_name)
        eks.update(ek.public for ek in ident.ek)
    assert len(names) == 3
    assert len(eks) == 6
