"""The store: one object per database, transactions, migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from soapattest.store.audit import AuditRepository
from soapattest.store.db import (
    POSTGRESQL,
    WRITE_OPTION,
    create_store_engine,
    db_errors,
    dialect_of,
    parse_url,
    translate,
)
from soapattest.store.evidence import EvidenceRepository
from soapattest.store.hosts import HostRepository
from soapattest.store.nonces import NonceRepository
from soapattest.store.policies import PolicyRepository
from soapattest.store.pools import PoolRepository
from soapattest.store.reports import ReportRepository
from soapattest.store.users import UserRepository
from soapattest.store.whitelists import WhitelistRepository

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x50A9A77E57  # pg_advisory_xact_lock key: one node migrates at a time


class Tx:
    """The repositories of one transaction (see :meth:`Store.transaction`)."""

    def __init__(self, session: Session) -> None:
        self.hosts = HostRepository(session)
        self.pools = PoolRepository(session)
        self.whitelists = WhitelistRepository(session)
        self.policies = PolicyRepository(session)
        self.reports = ReportRepository(session)
        self.nonces = NonceRepository(session)
        self.audit = AuditRepository(session)
        self.users = UserRepository(session)
        self.evidence = EvidenceRepository(session)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


class Store:
    """The attestation server's database: SQLite (embedded) or PostgreSQL (shared).

    ``url`` alone selects the database (``sqlite:///path`` or
    ``postgresql://user@host:port/db``). Construction connects to nothing and
    migrates nothing: call :meth:`upgrade` (idempotent) before use.
    ``busy_timeout_ms``: how long an SQLite writer waits for the write lock;
    ``connect_timeout_s``: PostgreSQL connection timeout. Raises
    InvalidArgumentError for an unusable URL or setting.
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 5000,
        connect_timeout_s: int = 10,
        pool_size: int = 5,
        max_overflow: int = 10,
        echo: bool = False,
    ) -> None:
        parsed = parse_url(url)
        self.dialect = dialect_of(parsed)
        self.display_url = parsed.render_as_string(hide_password=True)
        self._engine = create_store_engine(
            parsed,
            busy_timeout_ms=busy_timeout_ms,
            connect_timeout_s=connect_timeout_s,
            pool_size=pool_size,
            max_overflow=max_overflow,
            echo=echo,
        )
        self._readonly_engine = self._engine.execution_options(**{WRITE_OPTION: False})

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for migrations, tests and operators' tools; the service
        uses :meth:`transaction`)."""
        return self._engine

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Tx]:
        """One database transaction: committed when the block ends normally, rolled back
        on any exception (nothing of it is kept).

        ``readonly=True`` runs beside writers (SQLite WAL deferred BEGIN,
        PostgreSQL READ ONLY); writes in it fail. An error raised by a
        repository leaves the transaction unusable: let it propagate. Database
        failures surface as DatabaseUnavailableError (connection refused/lost,
        SQLite locked past the busy timeout) or DatabaseError.
        """
        engine = self._readonly_engine if readonly else self._engine
        try:
            with (
                Session(bind=engine, expire_on_commit=False, autoflush=True) as session,
                session.begin(),
            ):
                yield Tx(session)
        except sa_exc.SQLAlchemyError as exc:
            raise translate(exc) from exc

    # ------------------------------------------------------------------ migrations

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to ``revision`` (Alembic, in one transaction; a no-op when it
        is there already). Safe to call from several nodes at once. Raises
        DatabaseUnavailableError / DatabaseError."""
        config = _alembic_config()
        with db_errors(), self._engine.begin() as connection:
            if self.dialect == POSTGRESQL:
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def current_revision(self) -> str | None:
        """The schema revision of the database (None: never migrated)."""
        with db_errors(), self._readonly_engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision shipped with this code."""
        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close every pooled connection. The store can still be used afterwards
        (connections are opened again on demand)."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
