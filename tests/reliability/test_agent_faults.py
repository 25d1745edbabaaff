"""A trust agent killed (SIGKILL) while the server waits for its quote in AttestHosts.

The host whose agent dies gets an UNKNOWN report (never TRUSTED), the other hosts of
the same call are attested normally, the call itself completes, and the store holds
exactly one complete report (with its audit record) per host of the call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from soapattest.model import CheckStatus, TrustStatus
from tests.reliability.drip import Drip, DripAgent
from tests.reliability.harness import (
    HOSTS,
    Template,
    client_for,
    restart_agent,
    serve,
    stalled_call,
    sync_agents,
)
from tests.reliability.invariants import check_consistent, new_nonces, new_reports, snapshot

pytestmark = pytest.mark.swtpm

NONCE_TTL = 120  # the server's default [attestation] nonce_ttl
VICTIM = "rel-2"


def test_agent_killed_mid_quote(template: Template, tmp_path: Path) -> None:
    cluster = template.cluster
    with serve(template, tmp_path / "server") as server, client_for(server) as client:
        db = server.database_url
        # Positive control: the same bulk call without a fault attests every host.
        base = snapshot(db)
        control = client.attest_hosts(HOSTS)
        assert [(t.host, t.status) for t in control] == [(h, TrustStatus.TRUSTED) for h in HOSTS]
        before = snapshot(db)
        check_consistent(before, nonce_ttl=NONCE_TTL)
        assert {h: len(r) for h, r in new_reports(base, before).items()} == dict.fromkeys(HOSTS, 1)

        started = datetime.now(UTC)
        try:
            with stalled_call(cluster, VICTIM, lambda: client.attest_hosts(HOSTS)) as call:
                cluster.host(VICTIM).kill_agent()  # SIGKILL while the quote request waits
                results = {t.host: t for t in call.result()}
        finally:
            restart_agent(cluster, VICTIM)

        # The call completed: the victim is UNKNOWN (agent evidence missing), the rest TRUSTED.
        assert list(results) == list(HOSTS)
        victim = results[VICTIM]
        assert victim.status is TrustStatus.UNKNOWN and victim.report is not None
        assert [(c.id, c.status) for c in victim.report.checks] == [
            ("agent.evidence", CheckStatus.ERROR)
        ]
        assert victim.fault_code == ""
        for name in HOSTS:
            if name != VICTIM:
                assert results[name].status is TrustStatus.TRUSTED, results[name]

        # Nothing half-written: one complete report per host of the call, each with its
        # audit record; the victim's nonce was never consumed and expires, the others'
        # were consumed once.
        after = snapshot(db)
        check_consistent(after, nonce_ttl=NONCE_TTL)
        added = new_reports(before, after)
        returned = {h: [t.report.report_id] for h, t in results.items() if t.report is not None}
        assert {h: [r.report_id for r in rs] for h, rs in added.items()} == returned
        assert len(returned) == len(HOSTS)
        assert added[VICTIM][0].status is TrustStatus.UNKNOWN
        nonces = new_nonces(after, started)
        assert {h: len(n) for h, n in nonces.items()} == dict.fromkeys(HOSTS, 1)
        assert nonces[VICTIM][0].consumed_at is None
        assert all(nonces[h][0].consumed_at is not None for h in HOSTS if h != VICTIM)

        # Recovery needs nothing on the server: once the agent is back (on a new port,
        # so its URL is updated) the host is attested TRUSTED again.
        sync_agents(server)
        again = client.attest_hosts(HOSTS)
        assert [(t.host, t.status) for t in again] == [(h, TrustStatus.TRUSTED) for h in HOSTS]
        check_consistent(snapshot(db), nonce_ttl=NONCE_TTL)
        assert server.alive()


def test_dripping_agent_cut_off_in_bulk(template: Template, tmp_path: Path) -> None:
    """A hostile slow agent (its real answer, one byte every 0.2 s) costs the bulk call
    one agent timeout: that host is UNKNOWN, the others are attested, the call ends."""
    settings = {"attestation": {"agent_timeout": "2"}}
    cluster = template.cluster
    with (
        serve(template, tmp_path / "server", settings=settings) as server,
        client_for(server) as client,
    ):
        db = server.database_url
        control = client.attest_hosts(HOSTS)  # positive control: the real agents answer
        assert [(t.host, t.status) for t in control] == [(h, TrustStatus.TRUSTED) for h in HOSTS]
        before = snapshot(db)
        slow = DripAgent(Drip(prompt=12, gap=0.2), upstream=cluster.host(VICTIM).agent_url)
        try:
            client.update_host(VICTIM, agent_url=slow.url)
            results = {t.host: t for t in client.attest_hosts(HOSTS)}
        finally:
            slow.close()
        assert slow.requests >= 1
        victim = results[VICTIM]
        assert victim.status is TrustStatus.UNKNOWN and victim.report is not None
        assert [c.id for c in victim.report.checks] == ["agent.evidence"]
        assert "did not answer within 2 s" in victim.report.checks[0].reason
        assert all(results[h].status is TrustStatus.TRUSTED for h in HOSTS if h != VICTIM)
        after = snapshot(db)
        check_consistent(after, nonce_ttl=NONCE_TTL)
        assert {h: len(r) for h, r in new_reports(before, after).items()} == dict.fromkeys(HOSTS, 1)
