"""Store tests: an unreachable or busy database is a DatabaseUnavailableError, and the
store recovers by itself once the database is back."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from soapattest.errors import DatabaseUnavailableError
from soapattest.store import Store
from soapattest.store.db import PG_PING_AFTER_IDLE_S
from tests.integration.store_data import at, host

if TYPE_CHECKING:
    from tests.pg_fixture import PgCluster

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def test_postgresql_not_listening() -> None:
    s = Store(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", connect_timeout_s=2)
    try:
        with pytest.raises(DatabaseUnavailableError) as info, s.transaction() as tx:
            tx.hosts.names()
        assert info.value.code == "Server.DatabaseUnavailable"
        assert info.value.reason
        with pytest.raises(DatabaseUnavailableError):
            s.current_revision()
        with pytest.raises(DatabaseUnavailableError):
            s.upgrade()
    finally:
        s.close()


@pytest.mark.postgres
def test_postgresql_stopped_then_restarted(pg_cluster: PgCluster, pg_template: str) -> None:
    s = Store(pg_cluster.create_database(template=pg_template), connect_timeout_s=2)
    try:
        with s.transaction() as tx:  # the pool now holds a live connection
            tx.hosts.add(host("h"), at(0))
        with pg_cluster.stopped():
            with pytest.raises(DatabaseUnavailableError), s.transaction() as tx:
                tx.hosts.get("h")
            with pytest.raises(DatabaseUnavailableError), s.transaction() as tx:
                tx.hosts.add(host("h2"), at(1))
            with pytest.raises(DatabaseUnavailableError):
                s.current_revision()
        # back: the same Store works again without any manual step
        with s.transaction() as tx:
            assert tx.hosts.names() == ["h"]
            tx.hosts.add(host("h2"), at(2))
        with s.transaction() as tx:
            assert tx.hosts.names() == ["h", "h2"]
    finally:
        s.close()


def test_a_connection_killed_while_idle_is_replaced_before_use(
    pg_cluster: PgCluster, pg_template: str
) -> None:
    """Pooled PostgreSQL connections idle for more than PG_PING_AFTER_IDLE_S are pinged
    at checkout (no round trip for one reused at once); a dead one is replaced."""
    url = pg_cluster.create_database(template=pg_template)
    database = url.rsplit("/", 1)[1]
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", database)  # a plain identifier: safe to quote
    s = Store(url, connect_timeout_s=2)
    try:
        with s.transaction() as tx:  # the pool now holds a live connection
            tx.hosts.add(host("h"), at(0))

        def kill_sessions() -> None:
            sql = f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"  # noqa: S608, E501
            pg_cluster._admin(sql)

        kill_sessions()
        time.sleep(PG_PING_AFTER_IDLE_S + 0.2)
        with s.transaction(readonly=True) as tx:  # pinged, found dead, replaced
            assert tx.hosts.names() == ["h"]
        # twin: reused at once, the dead connection is not pinged - this call fails
        # (a database restart fails the calls in flight), the next one reconnects
        kill_sessions()
        with pytest.raises(DatabaseUnavailableError), s.transaction(readonly=True) as tx:
            tx.hosts.names()
        with s.transaction(readonly=True) as tx:
            assert tx.hosts.names() == ["h"]
    finally:
        s.close()


def test_sqlite_locked_past_the_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    holder = Store(url)
    waiter = Store(url, busy_timeout_ms=50)
    try:
        holder.upgrade()
        with holder.transaction() as tx:
            tx.hosts.add(host("h1"), at(0))  # the write lock is held until the block ends
            with pytest.raises(DatabaseUnavailableError) as info, waiter.transaction() as other:
                other.hosts.add(host("h2"), at(0))
            assert "locked" in info.value.reason
            with waiter.transaction(readonly=True) as reader:  # WAL: readers are not blocked
                assert reader.hosts.names() == []
        with waiter.transaction() as tx:  # twin: once the lock is released the write goes in
            tx.hosts.add(host("h2"), at(1))
            assert tx.hosts.names() == ["h1", "h2"]
    finally:
        holder.close()
        waiter.close()
