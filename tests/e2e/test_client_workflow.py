"""The bundled client against a real server subprocess and real simulated hosts: every
operation, the domain values it returns, and the exception type of every refusal."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from cryptography import x509

from soapattest.client import AttestationClient, HostInfo, Page
from soapattest.errors import (
    AgentUnreachableError,
    AlreadyExistsError,
    AssertionVerificationError,
    InUseError,
    InvalidArgumentError,
    NonceError,
    NotAuthorizedError,
    PolicyNotFoundError,
    ReportNotFoundError,
    UnknownHostError,
    VersionConflictError,
    WhitelistNotFoundError,
)
from soapattest.model import (
    CheckStatus,
    Combine,
    EntryKind,
    Policy,
    TrustStatus,
    WhitelistEntry,
    WhitelistRef,
    WorkloadRequirements,
)
from soapattest.server.agents import SoapAgentClient
from soapattest.server.saml import verify_assertion
from soapattest.tpm.pcr import PcrSelection
from tests.e2e.server_fixture import RunningServer, attest_server  # noqa: F401

pytestmark = pytest.mark.swtpm

POOL = "pool-a"
GOLDEN = "golden"
POLICY = "golden-policy"
PCRS = list(range(8))


@pytest.fixture(scope="module")
def env(attest_server: RunningServer) -> Iterator[SimpleNamespace]:  # noqa: F811
    """host-1..3 registered in pool-a, whitelist 'golden' from host-1, policy assigned,
    every host attested once."""
    client = attest_server.client()
    agents = {name: h.agent_url for name, h in attest_server.cluster.hosts.items()}
    for name in ("host-1", "host-2", "host-3"):
        client.register_host(name, agents[name], pool=POOL, labels={"rack": name[-1]})
    golden = client.import_whitelist_from_host("host-1", GOLDEN, PCRS)
    client.create_policy(Policy(POLICY, 0, Combine.ALL_OF, (WhitelistRef(GOLDEN),)))
    client.assign_policy(POLICY, pool=POOL)
    first = {t.host: t for t in client.attest_hosts(["host-1", "host-2", "host-3"])}
    yield SimpleNamespace(
        client=client, server=attest_server, agents=agents, golden=golden, first=first
    )
    client.close()


def test_registered_hosts(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    host = client.get_host("host-1")
    assert isinstance(host, HostInfo)
    assert (host.name, host.pool, host.policy, host.effective_policy) == (
        "host-1",
        POOL,
        "",
        POLICY,
    )
    assert host.agent_url == env.agents["host-1"]
    assert host.labels == {"rack": "1"}
    assert len(host.ak_name) == 34  # nameAlg (2 bytes) + SHA-256
    cert = x509.load_der_x509_certificate(host.ek_certificate)
    assert "host-1" in cert.subject.rfc4514_string()
    assert host.activated_at is not None and host.activated_at.tzinfo is UTC
    assert host.reset_count is not None


def test_list_hosts_pages(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    first = client.list_hosts(pool=POOL, limit=2)
    assert isinstance(first, Page)
    assert [h.name for h in first] == ["host-1", "host-2"]
    assert (first.total, first.has_more) == (3, True)
    rest = client.list_hosts(pool=POOL, offset=2, limit=2)
    assert [h.name for h in rest] == ["host-3"]
    assert not rest.has_more
    assert [h.name for h in client.iter_hosts(pool=POOL, page_size=1)] == [
        "host-1",
        "host-2",
        "host-3",
    ]
    assert client.list_hosts(pool="no-such-pool").total == 0


def test_refusals_raise_their_class(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    with pytest.raises(UnknownHostError) as unknown:
        client.get_host("nope")
    assert unknown.value.code == "Client.UnknownHost"
    assert "nope" in unknown.value.message
    with pytest.raises(UnknownHostError):
        client.attest_host("nope")
    with pytest.raises(AlreadyExistsError):
        client.register_host("host-1", env.agents["host-1"])
    with pytest.raises(InvalidArgumentError) as schema:
        client.get_host("not a name!")
    assert schema.value.code == "Client.SchemaValidationError"
    with pytest.raises(ReportNotFoundError):
        client.get_trust_report(10**9)
    with pytest.raises(PolicyNotFoundError):
        client.get_policy("no-such-policy")


def test_register_with_dead_agent(env: SimpleNamespace) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        with pytest.raises(AgentUnreachableError):
            env.client.register_host("ghost", dead)
    with pytest.raises(UnknownHostError):
        env.client.get_host("ghost")


def test_attest_trusted_and_tampered(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    good = client.attest_host("host-1")
    assert good.status is TrustStatus.TRUSTED
    assert good.policy == POLICY and good.whitelists == ((GOLDEN, env.golden.version),)
    assert set(good.pcrs["sha256"]) == set(PCRS)
    assert not good.failures()
    stored = client.get_trust_report(good.report_id)
    assert (stored.host, stored.status, stored.checks, stored.pcrs) == (
        good.host,
        good.status,
        good.checks,
        good.pcrs,
    )
    bad = client.attest_host("host-3")
    assert bad.status is TrustStatus.UNTRUSTED
    failing = [c for c in bad.checks if c.status is CheckStatus.FAIL]
    assert failing and all(c.component == f"whitelist:{GOLDEN}" for c in failing)
    assert any(c.event_index is not None for c in failing)


def test_bulk_attest_and_poll(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    results = client.attest_hosts(["host-1", "host-3", "nope"])
    assert [r.host for r in results] == ["host-1", "host-3", "nope"]
    assert [r.status for r in results] == [TrustStatus.TRUSTED, TrustStatus.UNTRUSTED, None]
    assert results[0].trusted and not results[1].trusted
    assert isinstance(results[2].error(), UnknownHostError)
    cached = client.poll_hosts(pool=POOL, max_age=3600)
    assert {r.host for r in cached} == {"host-1", "host-2", "host-3"}
    assert all(r.cached for r in cached)
    fresh = client.poll_hosts(["host-1"], max_age=0)
    assert [(r.host, r.cached, r.status) for r in fresh] == [("host-1", False, TrustStatus.TRUSTED)]


def test_list_trust_reports_filters(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    untrusted = client.list_trust_reports(host="host-3", status=TrustStatus.UNTRUSTED)
    assert untrusted.total >= 1
    assert all(r.host == "host-3" and r.status is TrustStatus.UNTRUSTED for r in untrusted)
    assert client.list_trust_reports(host="host-3", status="TRUSTED").total == 0
    later = datetime.now(UTC) + timedelta(days=1)
    assert client.list_trust_reports(since=later).total == 0
    newest = client.list_trust_reports(host="host-1", limit=1)
    assert len(newest) == 1 and newest.total >= 1


def test_measurements_and_retrieve_quote(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    client.attest_host("host-1")
    m = client.get_measurements("host-1")
    assert m.host == "host-1" and m.events
    assert set(m.pcrs["sha256"]) == set(PCRS)
    assert any(e.trusted for e in m.events)
    q = client.retrieve_quote("host-1", {"sha256": [0, 7]}, with_event_log=True)
    assert q.attest[:4] == b"\xffTCG"  # TPM_GENERATED_VALUE
    assert set(q.pcrs["sha256"]) == {0, 7} and len(q.nonce) == 32
    assert q.event_log
    q2 = client.retrieve_quote("host-1", PcrSelection.from_mapping({"sha256": [4]}))
    assert set(q2.pcrs["sha256"]) == {4} and q2.event_log is None
    assert q2.pcrs["sha256"][4] == m.pcrs["sha256"][4]


def test_caller_held_quote(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    agent = SoapAgentClient(timeout=30, max_response_bytes=64 * 1024 * 1024)
    url = env.agents["host-1"]
    nonce = client.issue_nonce("host-1")
    quote = agent.quote(url, nonce, PcrSelection.from_mapping({"sha256": PCRS}))
    log = agent.event_log(url)
    report = client.verify_quote(
        "host-1", nonce, quote.attest, quote.signature, quote.raw_pcrs, event_log=log
    )
    assert report.status is TrustStatus.TRUSTED
    with pytest.raises(NonceError):  # the nonce was used
        client.verify_quote(
            "host-1", nonce, quote.attest, quote.signature, quote.raw_pcrs, event_log=log
        )


def test_whitelist_lifecycle(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    entries = env.golden.entries[:3]
    extra = WhitelistEntry(EntryKind.PCR, "sha256", 15, b"\x0f" * 32, label="extra")
    v1 = client.create_whitelist("wl-life", entries, description="three entries")
    assert (v1.version, v1.entries, v1.description) == (1, tuple(sorted(entries)), "three entries")
    v2 = client.add_whitelist_entries("wl-life", [extra], expected_version=1)
    assert v2.version == 2 and extra in v2.entries
    with pytest.raises(VersionConflictError):
        client.add_whitelist_entries("wl-life", [extra], expected_version=1)
    v3 = client.remove_whitelist_entries("wl-life", [extra])
    assert v3.version == 3 and extra not in v3.entries
    assert client.get_whitelist("wl-life", 2).entries == v2.entries
    summary = {w.name: w for w in client.list_whitelists()}["wl-life"]
    assert (summary.version, summary.entry_count) == (3, len(entries))
    assert client.delete_whitelist("wl-life") is True
    with pytest.raises(WhitelistNotFoundError):
        client.get_whitelist("wl-life")


def test_import_whitelist_modes(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    pcr_only = client.import_whitelist_from_host("host-2", "imp", [0, 7], kinds=["pcr"])
    assert pcr_only.source_host == "host-2"
    assert {(e.kind, e.pcr) for e in pcr_only.entries} == {(EntryKind.PCR, 0), (EntryKind.PCR, 7)}
    with pytest.raises(AlreadyExistsError):
        client.import_whitelist_from_host("host-2", "imp", [0])
    v2 = client.import_whitelist_from_host("host-2", "imp", [0, 7], mode="NEW_VERSION")
    assert v2.version == 2 and any(e.kind is EntryKind.EVENT for e in v2.entries)


def test_policy_lifecycle(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    client.create_whitelist("wl-pol", env.golden.entries)
    policy = Policy("pol-life", 0, Combine.ALL_OF, (WhitelistRef("wl-pol", 1),), description="v1")
    v1 = client.create_policy(policy)
    assert v1.version == 1 and v1.whitelists == (WhitelistRef("wl-pol", 1),)
    v2 = client.update_policy(dataclasses.replace(v1, description="v2"), expected_version=1)
    assert (v2.version, v2.description) == (2, "v2")
    with pytest.raises(VersionConflictError):
        client.update_policy(dataclasses.replace(v1, description="stale"), expected_version=1)
    assert client.get_policy("pol-life", 1).description == "v1"
    assert "pol-life" in {p.name for p in client.list_policies()}
    assert client.assign_policy("pol-life", host="host-2") is True
    host = client.get_host("host-2")
    assert (host.policy, host.effective_policy) == ("pol-life", "pol-life")
    assert client.attest_host("host-2").policy == "pol-life"
    with pytest.raises(InUseError):
        client.delete_policy("pol-life")
    with pytest.raises(InUseError):
        client.delete_whitelist("wl-pol")
    client.assign_policy(None, host="host-2")
    assert client.get_host("host-2").effective_policy == POLICY
    assert client.delete_policy("pol-life") is True
    with pytest.raises(PolicyNotFoundError):
        client.get_policy("pol-life")


def test_trust_consumers(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    client.attest_hosts(["host-1", "host-2", "host-3"])
    decisions = client.list_trusted_hosts(POOL)
    assert {d.host for d in decisions if d.allowed} == {"host-1", "host-2"}
    assert [d.allowed for d in decisions] == sorted((d.allowed for d in decisions), reverse=True)
    denied = client.check_placement("host-3")
    assert not denied.allowed and denied.reasons
    assert client.check_placement("host-1").allowed
    wrong_rack = client.check_placement("host-1", WorkloadRequirements(labels={"rack": "9"}))
    assert not wrong_rack.allowed
    right_rack = client.check_placement("host-1", WorkloadRequirements(labels={"rack": "1"}))
    assert right_rack.allowed
    pools = {p.name: p for p in client.list_pools()}
    assert (pools[POOL].policy, pools[POOL].host_count) == (POLICY, 3)


def test_signed_assertion(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    report = client.attest_host("host-1")
    signed = client.get_trust_assertion("host-1")
    assert (signed.report_id, signed.status) == (report.report_id, TrustStatus.TRUSTED)
    cert = client.get_signing_certificate()
    verified = verify_assertion(signed.xml, cert, now=datetime.now(UTC))
    assert verified.host == "host-1" and verified.trusted
    assert verified.attributes["report_id"] == str(report.report_id)
    forged = signed.xml.replace(b">TRUSTED<", b">UNTRUSTED<")
    assert forged != signed.xml
    with pytest.raises(AssertionVerificationError):
        verify_assertion(forged, cert)


def test_audit_records(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    page = client.list_audit_records(action="host.register", target="host-1")
    assert page.total >= 1
    assert all(a.action == "host.register" and a.target == "host-1" for a in page)
    assert page.items[0].at.tzinfo is UTC
    one = client.list_audit_records(limit=1)
    assert len(one) == 1 and one.total > 1 and one.has_more


def test_update_reenroll_delete(env: SimpleNamespace) -> None:
    client: AttestationClient = env.client
    sim = env.server.cluster.start_host("host-4")
    info = client.register_host("host-4", sim.agent_url, labels={"a": "1"})
    assert (info.pool, info.labels) == ("", {"a": "1"})
    updated = client.update_host("host-4", pool=POOL, description="spare")
    assert (updated.pool, updated.labels, updated.description) == (POOL, {"a": "1"}, "spare")
    relabelled = client.update_host("host-4", labels={"b": "2"})
    assert relabelled.labels == {"b": "2"}
    assert client.reenroll_host("host-4").ak_name
    sim.kill_agent()
    assert client.attest_host("host-4").status is TrustStatus.UNKNOWN
    assert client.delete_host("host-4") is True
    with pytest.raises(UnknownHostError):
        client.get_host("host-4")


def test_authentication(env: SimpleNamespace) -> None:
    server: RunningServer = env.server
    if not server.username:
        pytest.skip("the server does not require credentials")
    assert env.client.list_pools()  # the fixture's credentials work
    with AttestationClient(server.url) as anonymous, pytest.raises(NotAuthorizedError):
        anonymous.list_pools()
    wrong = AttestationClient(server.url, username=server.username, password="wrong-password")
    with wrong, pytest.raises(NotAuthorizedError) as info:
        wrong.list_pools()
    assert info.value.code == "Client.NotAuthorized"
    text = AttestationClient(
        server.url, username=server.username, password=server.password, password_digest=False
    )
    with text, pytest.raises(NotAuthorizedError):  # PasswordText over plain HTTP
        text.list_pools()
