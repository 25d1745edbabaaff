"""Store tests: migrations, schema versus ORM metadata, connection settings, datetimes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect, text

from soapattest.errors import InvalidArgumentError
from soapattest.store import Store
from soapattest.store.orm import Base
from tests.integration.store_data import at, host

if TYPE_CHECKING:
    from tests.integration.store_support import Backend

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def _diff(s: Store) -> list[object]:
    with s.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_construction_does_not_migrate_and_upgrade_reaches_head(backend: Backend) -> None:
    s = Store(backend.new_url())
    try:
        assert s.current_revision() is None
        s.upgrade()
        head = Store.head_revision()
        assert head is not None
        assert s.current_revision() == head
        s.upgrade()  # idempotent
        assert s.current_revision() == head
    finally:
        s.close()


def test_sqlite_construction_touches_no_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "db.sqlite"
    s = Store(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()  # parent directory created
        assert not path.exists()  # but nothing connected yet
        s.upgrade()
        assert path.is_file()
    finally:
        s.close()


def test_migrated_schema_matches_orm_metadata(store: Store) -> None:
    assert _diff(store) == []


def test_schema_drift_is_detected(backend: Backend) -> None:
    # Twin of the test above: the comparison does see a difference when there is one.
    drifted = Store(backend.new_url(migrated=True))  # its own database: the schema changes
    try:
        with drifted.engine.begin() as connection:
            connection.execute(text("ALTER TABLE users ADD COLUMN surprise INTEGER"))
            connection.execute(text("CREATE INDEX ix_extra ON hosts (agent_url)"))
        diff = _diff(drifted)
    finally:
        drifted.close()
    assert any(d[0] == "remove_column" and d[2] == "users" for d in diff if isinstance(d, tuple))
    assert any(
        d[0] == "remove_index" and d[1].name == "ix_extra" for d in diff if isinstance(d, tuple)
    )


def test_concurrent_upgrades_from_two_nodes(backend: Backend) -> None:
    url = backend.new_url()
    stores = [Store(url), Store(url)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(s: Store) -> None:
        try:
            barrier.wait()
            s.upgrade()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert stores[0].current_revision() == Store.head_revision()
        assert _diff(stores[1]) == []
    finally:
        for s in stores:
            s.close()


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path}/db.sqlite", busy_timeout_ms=1234)
    try:
        with s.engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": 1,  # NORMAL
            "busy_timeout": 1234,
        }
    finally:
        s.close()


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sa_exc.IntegrityError), store.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO whitelist_versions (whitelist_id, version, description, source_host,"
                " created_at, created_by) VALUES (4242, 1, '', '', :t, '')"
            ),
            {"t": at(0).replace(tzinfo=None)},
        )


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user@127.0.0.1/db",
        "sqlite://",
        "sqlite:///:memory:",
        "not a url",
    ],
)
def test_unusable_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        Store(url)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///relative/dir/x.sqlite",
        "sqlite+pysqlite:///x.sqlite",
        "postgresql://user:secret@127.0.0.1:5432/db",
        "postgresql+psycopg2://user@localhost/db",
    ],
)
def test_supported_urls_are_accepted(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = Store(url)
    try:
        assert s.dialect in ("sqlite", "postgresql")
        assert "secret" not in repr(s)
    finally:
        s.close()


def test_datetimes_come_back_as_aware_utc(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 5, 6, 9, 30, 0, 250, tzinfo=plus_two)
    with store.transaction() as tx:
        tx.hosts.add(host("h"), local)
    with store.transaction() as tx:
        created = tx.hosts.get("h").created_at
    assert created is not None
    assert created.tzinfo is UTC
    assert created == local  # the same instant
    assert created.hour == 7


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.hosts.add(host("h"), datetime(2026, 1, 1))  # naive: the point of the test
    with store.transaction() as tx:
        assert tx.hosts.find("h") is None
        tx.hosts.add(host("h"), datetime(2026, 1, 1, tzinfo=UTC))
        assert tx.hosts.find("h") is not None


def test_downgrade_to_base_and_upgrade_again(backend: Backend) -> None:
    from alembic import command
    from alembic.config import Config

    from soapattest.store.store import MIGRATIONS_DIR

    s = Store(backend.new_url(migrated=True))
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with s.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with s.engine.connect() as connection:
            left = set(inspect(connection).get_table_names()) - {"alembic_version"}
        assert left == set()
        assert s.current_revision() is None
        s.upgrade()
        assert _diff(s) == []
        with s.transaction() as tx:  # the triggers are back too
            tx.audit.record(
                actor="a", action="x", target_type="t", target="y", outcome="ok", at=at(0)
            )
        with pytest.raises(sa_exc.IntegrityError), s.engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_log"))
    finally:
        s.close()
