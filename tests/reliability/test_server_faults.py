"""The server itself fails while AttestHosts is in flight.

- a gunicorn worker is killed (SIGKILL) while it serves the call: the client gets an
  error (never an answer), gunicorn starts a new worker, the next call succeeds, and
  the killed call left no report behind;
- the whole server is stopped (SIGTERM) and started again on the same database: the
  call in flight is either drained (answered in full, within gunicorn's graceful
  timeout) or cut off (an error, no report), and a retried AttestHosts succeeds.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from soapattest.errors import ServerUnreachableError
from soapattest.model import TrustStatus
from tests.e2e.server_fixture import RunningServer
from tests.reliability.harness import (
    HOSTS,
    Template,
    client_for,
    serve,
    stalled_call,
    wait_for_log,
    wait_for_workers,
    workers_of,
)
from tests.reliability.invariants import (
    Snapshot,
    check_consistent,
    new_nonces,
    new_reports,
    snapshot,
)
from tests.reliability.procs import alive, pids_connected_to

pytestmark = pytest.mark.swtpm

NONCE_TTL = 120  # the server's default [attestation] nonce_ttl
SLOW = "rel-2"
ALL_TRUSTED = [(h, TrustStatus.TRUSTED) for h in HOSTS]


def _attest_all(server: RunningServer, before: Snapshot) -> Snapshot:
    """AttestHosts of every host succeeds with one new report each; the new snapshot."""
    with client_for(server) as client:
        results = client.attest_hosts(HOSTS)
    assert [(t.host, t.status) for t in results] == ALL_TRUSTED
    after = snapshot(server.database_url)
    check_consistent(after, nonce_ttl=NONCE_TTL)
    assert {h: len(r) for h, r in new_reports(before, after).items()} == dict.fromkeys(HOSTS, 1)
    return after


def _nothing_stored(before: Snapshot, db: str, started: datetime) -> None:
    """The cut-off call stored no report; its nonces were issued and never consumed."""
    after = snapshot(db)
    check_consistent(after, nonce_ttl=NONCE_TTL)
    assert new_reports(before, after) == {}
    nonces = new_nonces(after, started)
    assert {h: len(n) for h, n in nonces.items()} == dict.fromkeys(HOSTS, 1)
    assert all(n.consumed_at is None for ns in nonces.values() for n in ns)


def test_worker_killed_mid_request(template: Template, tmp_path: Path) -> None:
    with serve(template, tmp_path / "server", workers=2) as server:
        db = server.database_url
        workers = wait_for_workers(server, 2)
        before = _attest_all(server, snapshot(db))  # positive control

        started = datetime.now(UTC)
        with client_for(server) as client:
            call_ = lambda: client.attest_hosts(HOSTS)  # noqa: E731
            with stalled_call(template.cluster, SLOW, call_) as call:
                serving = pids_connected_to(call.agent_port, workers)
                assert len(serving) == 1, (serving, workers)
                victim = serving[0]
                os.kill(victim, signal.SIGKILL)
                # The client gets an error, not an answer.
                with pytest.raises(ServerUnreachableError):
                    call.result()
            # gunicorn replaces the worker; the server never went down.
            respawned = wait_for_workers(server, 2, gone=victim)
            assert victim not in respawned and server.alive()
            _nothing_stored(before, db, started)
            # The same client works again without any manual step.
            results = client.attest_hosts(HOSTS)
            assert [(t.host, t.status) for t in results] == ALL_TRUSTED
        after = snapshot(db)
        check_consistent(after, nonce_ttl=NONCE_TTL)
        assert {h: len(r) for h, r in new_reports(before, after).items()} == dict.fromkeys(HOSTS, 1)


def _sigterm_and_wait(server: RunningServer) -> int:
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(120)


def test_server_restarted_mid_request_drains(template: Template, tmp_path: Path) -> None:
    """SIGTERM with the slow agent answering within gunicorn's graceful timeout: the call
    in flight is answered in full, and stored exactly once."""
    base = tmp_path / "server"
    with serve(template, base) as server:
        db = server.database_url
        before = _attest_all(server, snapshot(db))  # positive control
        with client_for(server) as client:
            call_ = lambda: client.attest_hosts(HOSTS)  # noqa: E731
            with stalled_call(template.cluster, SLOW, call_) as call:
                workers = workers_of(server)
                server.process.send_signal(signal.SIGTERM)
                wait_for_log(server, "Handling signal: term")
                # The workers are shutting down; the stalled agent answers now.
                call.release()
                results = call.result()
            assert server.process.wait(120) == 0
        assert not any(alive(pid) for pid in workers)
    assert [(t.host, t.status) for t in results] == ALL_TRUSTED
    drained = snapshot(db)
    check_consistent(drained, nonce_ttl=NONCE_TTL)
    added = new_reports(before, drained)
    assert {h: [r.report_id for r in rs] for h, rs in added.items()} == {
        t.host: [t.report.report_id] for t in results if t.report is not None
    }
    # Started again on the same database: the retried call succeeds.
    with serve(template, base, fresh=False) as again:
        _attest_all(again, drained)


def test_server_restarted_mid_request_cut_off(template: Template, tmp_path: Path) -> None:
    """SIGTERM while the slow agent stays silent past gunicorn's graceful timeout (20 s;
    the agent timeout is longer): the call is cut off with an error, nothing of it is
    stored, and after a restart on the same database the retried call succeeds."""
    base = tmp_path / "server"
    settings = {"attestation": {"agent_timeout": "60"}}
    with serve(template, base, settings=settings) as server:
        db = server.database_url
        before = _attest_all(server, snapshot(db))  # positive control
        started = datetime.now(UTC)
        with client_for(server, timeout=120) as client:
            call_ = lambda: client.attest_hosts(HOSTS)  # noqa: E731
            with stalled_call(template.cluster, SLOW, call_) as call:
                _sigterm_and_wait(server)
                with pytest.raises(ServerUnreachableError):
                    call.result()
    _nothing_stored(before, db, started)
    with serve(template, base, fresh=False, settings=settings) as again:
        _attest_all(again, before)
