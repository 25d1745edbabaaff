"""The database goes away for a while under a running server.

- SQLite: another connection holds the write lock (``BEGIN EXCLUSIVE``) longer than the
  server's busy timeout, before a call and while one is in flight;
- PostgreSQL: the cluster is stopped and started again, before a call and while one is
  in flight.

While degraded every call is refused with ``Server.DatabaseUnavailable`` (the client's
DatabaseUnavailableError; within the client's timeout, so in bounded time), nothing is
granted or stored half-way, the server process and its workers stay up, and once the
database is back calls succeed again without restarting anything.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from soapattest.client import AttestationClient
from soapattest.errors import DatabaseUnavailableError
from soapattest.model import TrustStatus, WorkloadRequirements
from tests.e2e.server_fixture import RunningServer, run_server
from tests.pg_fixture import pg_cluster  # noqa: F401
from tests.reliability.harness import (
    DB_FILE,
    HOSTS,
    Template,
    client_for,
    enrol,
    serve,
    stalled_call,
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

if TYPE_CHECKING:
    from tests.pg_fixture import PgCluster

pytestmark = pytest.mark.swtpm

NONCE_TTL = 120  # the server's default [attestation] nonce_ttl
CALL_TIMEOUT = 30.0  # the client's bound on any call while the database is away
TARGET = "rel-1"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock on ``path`` (``BEGIN EXCLUSIVE``) for the block."""
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def _refused(client: AttestationClient, report_id: int) -> None:
    """Reads, writes and attestation are all refused with Server.DatabaseUnavailable."""
    calls = (
        lambda: client.attest_hosts(HOSTS[:2]),
        lambda: client.attest_host(TARGET),
        lambda: client.get_trust_report(report_id),
        lambda: client.list_trust_reports(host=TARGET),
        lambda: client.check_placement(TARGET, WorkloadRequirements()),
    )
    for call in calls:
        with pytest.raises(DatabaseUnavailableError) as info:
            call()
        assert info.value.code == "Server.DatabaseUnavailable"


def _works(client: AttestationClient, report_id: int) -> None:
    """The twin of :func:`_refused`: the same calls succeed."""
    assert [t.status for t in client.attest_hosts(HOSTS[:2])] == [TrustStatus.TRUSTED] * 2
    assert client.attest_host(TARGET).status is TrustStatus.TRUSTED
    assert client.get_trust_report(report_id).report_id == report_id
    assert client.list_trust_reports(host=TARGET).total >= 1
    assert client.check_placement(TARGET, WorkloadRequirements()).allowed


def _nothing_new(
    before: Snapshot, after: Snapshot, started: datetime, hosts: tuple[str, ...]
) -> None:
    """No report was added, and the in-flight call's nonces were never consumed."""
    check_consistent(after, nonce_ttl=NONCE_TTL)
    assert new_reports(before, after) == {}
    nonces = new_nonces(after, started)
    assert {h: len(n) for h, n in nonces.items()} == dict.fromkeys(hosts, 1)
    assert all(n.consumed_at is None for ns in nonces.values() for n in ns)


def test_sqlite_locked_longer_than_busy_timeout(template: Template, tmp_path: Path) -> None:
    settings = {"database": {"busy_timeout": "1"}}
    with (
        serve(template, tmp_path / "server", settings=settings) as server,
        client_for(server, timeout=CALL_TIMEOUT) as client,
    ):
        db, path = server.database_url, server.base_dir / "state" / DB_FILE
        workers = wait_for_workers(server, 2)
        report = client.attest_host(TARGET)
        _works(client, report.report_id)  # positive control
        before = snapshot(db)

        # Locked before the calls: each is refused (authentication itself must write).
        with exclusive_lock(path):
            _refused(client, report.report_id)
            assert new_reports(before, snapshot(db)) == {}

        # Locked while a call is in flight (authenticated, nonce issued, agent asked):
        # storing the result waits for the busy timeout, then the call is refused.
        started = datetime.now(UTC)
        with stalled_call(template.cluster, TARGET, lambda: client.attest_host(TARGET)) as call:
            with exclusive_lock(path):
                call.release()
                with pytest.raises(DatabaseUnavailableError):
                    call.result()
        _nothing_new(before, snapshot(db), started, (TARGET,))

        # Released: everything works again, no restart, no manual step.
        _works(client, report.report_id)
        check_consistent(snapshot(db), nonce_ttl=NONCE_TTL)
        assert server.alive() and workers_of(server) == workers


@pytest.mark.postgres
def test_postgresql_stopped_and_restarted(
    template: Template,
    pg_cluster: PgCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = pg_cluster.create_database()
    with run_server(tmp_path / "server", template.cluster, database_url=url, workers=2) as server:
        with client_for(server, timeout=120) as admin:
            enrol(admin, template.cluster)
        _postgresql_outages(server, pg_cluster, url)


def _postgresql_outages(server: RunningServer, cluster: PgCluster, url: str) -> None:
    workers = wait_for_workers(server, 2)
    with client_for(server, timeout=CALL_TIMEOUT) as client:
        report = client.attest_host(TARGET)
        _works(client, report.report_id)  # positive control
        before = snapshot(url)

        # Stopped before the calls: refused, the server and its workers stay up.
        with cluster.stopped():
            _refused(client, report.report_id)
            assert server.alive() and workers_of(server) == workers
        # Started again: the very next calls succeed, on the same server processes.
        _works(client, report.report_id)
        assert new_reports(before, snapshot(url)).keys() == set(HOSTS[:2])
        before = snapshot(url)

        # Stopped while a bulk call is in flight: refused, nothing stored.
        started = datetime.now(UTC)
        bulk = lambda: client.attest_hosts(HOSTS)  # noqa: E731
        with stalled_call(server.cluster, TARGET, bulk) as call, cluster.stopped():
            call.release()
            with pytest.raises(DatabaseUnavailableError):
                call.result()
        _nothing_new(before, snapshot(url), started, HOSTS)
        _works(client, report.report_id)
        check_consistent(snapshot(url), nonce_ttl=NONCE_TTL)
        assert server.alive() and workers_of(server) == workers
