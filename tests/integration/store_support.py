"""Fixtures shared by the store tests (``tests/integration/test_store_*.py``).

Load with ``pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]``
(import ``Backend`` only under TYPE_CHECKING, so the plugin is not imported early).

``store`` is parametrized over SQLite and PostgreSQL: every store test runs on
both, each on an empty migrated database:

* SQLite: a copy of a database file migrated once per worker by ``Store.upgrade``;
* PostgreSQL: one migrated database per worker, emptied before each test
  (TRUNCATE with triggers disabled for that one session, sequences restarted).

Tests that change the schema (add triggers, columns) must not use ``store``:
they take ``backend`` and ask ``backend.new_url(migrated=True)`` for a database
of their own.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from soapattest.store import Store
from soapattest.store.orm import Base
from tests.pg_fixture import PgCluster

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _migrate(url: str) -> None:
    store = Store(url)
    try:
        store.upgrade()
    finally:
        store.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database file to copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "store.sqlite"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """Name of a migrated template database on this worker's cluster."""
    name = f"tpl_{uuid.uuid4().hex[:12]}"
    _migrate(pg_cluster.create_database(name))
    return name


@pytest.fixture(scope="session")
def pg_shared_url(pg_cluster: PgCluster, pg_template: str) -> str:
    """A migrated database reused (emptied) by the ``store`` tests of this worker."""
    return pg_cluster.create_database(template=pg_template)


def empty_pg_database(url: str) -> None:
    """Remove every row of every store table (triggers off for this session only)."""
    parsed = make_url(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    connection = psycopg2.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        dbname=parsed.database,
        connect_timeout=10,
    )
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        connection.close()


class Backend:
    """Where a test's database lives; ``new_url()`` makes another one."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._tmp = tmp_path
        self._request = request
        self._created: list[str] = []
        self.cluster: PgCluster | None = None
        if kind == "postgresql":
            self.cluster = request.getfixturevalue("pg_cluster")

    def new_url(self, *, migrated: bool = False) -> str:
        """A URL of a new database of its own (migrated when ``migrated``)."""
        if self.cluster is None:
            path = self._tmp / f"db-{uuid.uuid4().hex[:8]}" / "store.sqlite"
            if migrated:
                path.parent.mkdir(parents=True)
                shutil.copyfile(self._request.getfixturevalue("sqlite_template"), path)
            return f"sqlite:///{path}"
        template = self._request.getfixturevalue("pg_template") if migrated else None
        name = f"t_{uuid.uuid4().hex[:16]}"
        self._created.append(name)
        return self.cluster.create_database(name, template=template)

    def shared_url(self) -> str:
        """An empty migrated database (cheap: reused between tests)."""
        if self.cluster is None:
            return self.new_url(migrated=True)
        url: str = self._request.getfixturevalue("pg_shared_url")
        empty_pg_database(url)
        return url

    def cleanup(self) -> None:
        if self.cluster is not None and self.cluster.running:
            for name in self._created:
                self.cluster.drop_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    chosen = Backend(request.param, tmp_path, request)
    try:
        yield chosen
    finally:
        chosen.cleanup()


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    """A migrated, empty store (SQLite and PostgreSQL)."""
    s = Store(backend.shared_url())
    try:
        yield s
    finally:
        s.close()
