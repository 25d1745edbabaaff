"""Issue 4 acceptance, end to end over real HTTP, on SQLite and on PostgreSQL.

Server subprocess (gunicorn) + simulated swtpm hosts + the bundled zeep client:
register 3 hosts, import a whitelist from host 1, create a policy, attest all
-> TRUSTED; a host booted with a tampered log -> UNTRUSTED naming the event;
an agent stopped -> UNKNOWN; PollHosts respects max age; the SAML assertion
verifies with the published certificate and fails after one byte changes;
CheckPlacement answers by policy; ListTrustReports pages through history.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from soapattest.errors import AssertionVerificationError
from soapattest.model import Combine, Policy, TrustStatus, WhitelistRef, WorkloadRequirements
from soapattest.server.saml import verify_assertion
from soapattest.sim.host import HostSpec
from soapattest.wsdl_canonical import canonical_wsdl
from tests.conftest import ROOT
from tests.e2e.server_fixture import GOOD_LOG, run_cluster, run_server

pytestmark = pytest.mark.swtpm

HOSTS = (
    HostSpec("acc-1", GOOD_LOG),
    HostSpec("acc-2", GOOD_LOG),
    HostSpec("acc-3", GOOD_LOG),
    HostSpec("acc-bad", GOOD_LOG, tamper="event"),
)
GOOD = ["acc-1", "acc-2", "acc-3"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                              marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Any]:
    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("pg_cluster").create_database()
    base = tmp_path_factory.mktemp(f"acceptance-{request.param}")
    with run_cluster(base / "sim", HOSTS) as cluster, run_server(
        base / "server", cluster, database_url=database_url
    ) as server:
        client = server.client(timeout=120)
        for spec in HOSTS:
            client.register_host(spec.name, cluster.host(spec.name).agent_url, pool="acc")
        client.import_whitelist_from_host("acc-1", "acc-golden", range(8))
        client.create_policy(
            Policy("acc-policy", 0, Combine.ALL_OF, (WhitelistRef("acc-golden"),))
        )
        client.assign_policy("acc-policy", pool="acc")
        yield server, client, cluster
        client.close()


pytest_plugins = ["tests.pg_fixture"]


def test_known_good_hosts_are_trusted(env: Any) -> None:
    _, client, _ = env
    outcomes = client.attest_hosts(GOOD)
    assert [o.status for o in outcomes] == [TrustStatus.TRUSTED] * 3
    for o in outcomes:
        assert o.report is not None and not o.report.failures()


def test_tampered_host_is_untrusted_and_the_event_is_named(env: Any) -> None:
    _, client, _ = env
    report = client.attest_host("acc-bad")
    assert report.status is TrustStatus.UNTRUSTED
    events = [c for c in report.failures() if c.id == "whitelist.event"]
    assert events and events[0].pcr == 4 and events[0].event_index is not None
    assert "EV_EFI_BOOT_SERVICES_APPLICATION" in events[0].reason
    # twin: the same host's quote itself verified (only the whitelist failed)
    assert all(c.status.value == "PASS" for c in report.checks if c.component == "quote")


def test_stopped_agent_gives_unknown_and_supersedes_trust(env: Any) -> None:
    _, client, cluster = env
    assert client.attest_host("acc-3").status is TrustStatus.TRUSTED
    host = cluster.host("acc-3")
    host.kill_agent()
    try:
        report = client.attest_host("acc-3")
        assert report.status is TrustStatus.UNKNOWN
        assert report.checks[0].id == "agent.evidence"
        decision = client.check_placement("acc-3", WorkloadRequirements())
        assert not decision.allowed
    finally:
        host.start_agent()
    assert client.attest_host("acc-3").status is TrustStatus.TRUSTED


def test_poll_hosts_respects_max_age(env: Any) -> None:
    _, client, _ = env
    fresh = client.attest_host("acc-2")
    cached = client.poll_hosts(["acc-2"], max_age=3600)
    assert cached[0].cached and cached[0].report.report_id == fresh.report_id
    renewed = client.poll_hosts(["acc-2"], max_age=0)
    assert not renewed[0].cached and renewed[0].report.report_id > fresh.report_id


def test_assertion_verifies_with_the_published_certificate_only_unmodified(env: Any) -> None:
    _, client, _ = env
    client.attest_host("acc-1")
    assertion = client.get_trust_assertion("acc-1")
    cert = client.get_signing_certificate()
    verified = verify_assertion(assertion.xml, cert)
    assert verified.host == "acc-1" and verified.trusted
    assert verified.attributes["report_id"] == str(assertion.report_id)
    flipped = bytearray(assertion.xml)
    at = assertion.xml.index(b">TRUSTED<") + 1
    flipped[at] ^= 0x01
    with pytest.raises(AssertionVerificationError):
        verify_assertion(bytes(flipped), cert)


def test_check_placement_answers_by_policy(env: Any) -> None:
    _, client, _ = env
    client.attest_hosts(["acc-1", "acc-bad"])
    by_policy = WorkloadRequirements(policies=("acc-policy",))
    assert client.check_placement("acc-1", by_policy).allowed
    other = WorkloadRequirements(policies=("some-other-policy",))
    denied = client.check_placement("acc-1", other)
    assert not denied.allowed and any("policy" in r for r in denied.reasons)
    bad = client.check_placement("acc-bad", by_policy)
    assert not bad.allowed and any("UNTRUSTED" in r for r in bad.reasons)


def test_list_trust_reports_pages_through_history(env: Any) -> None:
    _, client, _ = env
    ids = [client.attest_host("acc-1").report_id for _ in range(3)]
    first = client.list_trust_reports(host="acc-1", limit=2)
    second = client.list_trust_reports(host="acc-1", limit=2, offset=2)
    assert first.total >= 3 and first.total == second.total
    seen = [r.report_id for r in first] + [r.report_id for r in second]
    assert seen[:3] == sorted(ids, reverse=True)
    assert len(set(seen)) == len(seen)


def test_live_wsdl_equals_the_committed_file(env: Any) -> None:
    server, _, _ = env
    live = requests.get(server.wsdl_url, timeout=10).content
    committed = (ROOT / "wsdl" / "soapattest.wsdl").read_bytes()
    assert canonical_wsdl(live, location="http://localhost:8080/") == committed
