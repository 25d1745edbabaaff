"""Engines for the two supported databases, and the one place database errors are mapped.

The database URL is the only switch: ``sqlite:///path/to/db.sqlite`` (the
embedded default) or ``postgresql://user@host:port/db`` (psycopg2; several
server nodes share it).

SQLite connections get ``journal_mode=WAL``, ``foreign_keys=ON``,
``synchronous=NORMAL`` and a ``busy_timeout``. Python's sqlite3 module is kept
from issuing its own (late, deferred) BEGIN: the store emits ``BEGIN IMMEDIATE``
for write transactions, so a writer takes the write lock up front and waits up
to the busy timeout instead of failing half-way with a lock upgrade error;
read-only transactions use a deferred ``BEGIN`` (with ``query_only``) and run
beside the writer (WAL).
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from soapattest.errors import DatabaseError, DatabaseUnavailableError, InvalidArgumentError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_DRIVERS = {
    "sqlite": SQLITE,
    "sqlite+pysqlite": SQLITE,
    "postgresql": POSTGRESQL,
    "postgresql+psycopg2": POSTGRESQL,
}

WRITE_OPTION = "soapattest_write"  # execution option: this connection's transaction writes
_QUERY_ONLY = "soapattest_query_only"  # pool record info: the SQLite connection's query_only

T = TypeVar("T")


def parse_url(url: str) -> URL:
    """Parse and check a database URL.

    Returns the SQLAlchemy URL. Raises InvalidArgumentError when it does not
    parse, names another database, or is an in-memory SQLite database (each
    pooled connection would see a different, empty database).
    """
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise InvalidArgumentError(f"invalid database URL: {exc}", argument="url") from exc
    if parsed.drivername not in _DRIVERS:
        raise InvalidArgumentError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///path or postgresql://...",
            argument="url",
        )
    if _DRIVERS[parsed.drivername] == SQLITE and parsed.database in (None, "", ":memory:"):
        raise InvalidArgumentError(
            "an in-memory SQLite database cannot be shared by the store's connections: "
            "give a file path (sqlite:///path/to/db.sqlite)",
            argument="url",
        )
    return parsed


def dialect_of(url: URL) -> str:
    """``"sqlite"`` or ``"postgresql"`` for a URL accepted by :func:`parse_url`."""
    return _DRIVERS[url.drivername]


def create_store_engine(
    url: URL,
    *,
    busy_timeout_ms: int = 5000,
    connect_timeout_s: int = 10,
    pool_size: int = 5,
    max_overflow: int = 10,
    echo: bool = False,
) -> Engine:
    """Build the engine for ``url`` (see the module docstring for what is set per database).

    For SQLite the database file's parent directory is created. Nothing
    connects yet. Raises InvalidArgumentError for out-of-range settings.
    """
    if busy_timeout_ms < 0 or connect_timeout_s <= 0 or pool_size <= 0 or max_overflow < 0:
        raise InvalidArgumentError("database timeouts and pool sizes must be positive")
    if dialect_of(url) == SQLITE:
        return _sqlite_engine(url, busy_timeout_ms, pool_size, max_overflow, echo)
    return _postgresql_engine(url, connect_timeout_s, pool_size, max_overflow, echo)


def _sqlite_engine(
    url: URL, busy_timeout_ms: int, pool_size: int, max_overflow: int, echo: bool
) -> Engine:
    assert url.database is not None
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # sqlite3's own timeout is the busy timeout in seconds; the pragma below sets it too.
        connect_args={"timeout": busy_timeout_ms / 1000.0, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            _enable_wal(cursor, busy_timeout_ms)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "connect")
    def _on_connect_mode(_dbapi_connection: Any, record: Any) -> None:
        record.info[_QUERY_ONLY] = False  # a fresh connection writes (query_only=0)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight through the driver: these run once per transaction, and SQLAlchemy's
        # exec_driver_sql costs more than the statements themselves. query_only is a
        # per-connection setting: it is issued only when this connection was left in
        # the other mode (the pool record's ``info`` remembers it; a reconnected
        # connection starts afresh, see the connect hook).
        query_only = not conn.get_execution_options().get(WRITE_OPTION, True)
        fairy = conn.connection
        driver = fairy.dbapi_connection
        assert driver is not None
        info = fairy.info
        statement = "BEGIN" if query_only else "BEGIN IMMEDIATE"
        try:
            if info.get(_QUERY_ONLY) is not query_only:
                info.pop(_QUERY_ONLY, None)  # unknown until the pragma has run
                driver.execute(f"PRAGMA query_only={int(query_only)}")
                info[_QUERY_ONLY] = query_only
            driver.execute(statement)
        except sqlite3.Error as exc:  # as SQLAlchemy would wrap it (locked -> OperationalError)
            raise sa_exc.DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc

    return engine


def _enable_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Switch the database to WAL (a no-op once it is). Switching needs a moment with no
    other writer, and SQLite does not apply the busy timeout to it: retry until the
    timeout (two workers opening a fresh database at once would otherwise fail)."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + busy_timeout_ms / 1000.0
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# A pooled PostgreSQL connection idle for longer than this is pinged before use (a
# server restart kills connections; a busy pool, reused within milliseconds, is not
# pinged on every checkout - that would be one more round trip per transaction).
PG_PING_AFTER_IDLE_S = 1.0


def _postgresql_engine(
    url: URL, connect_timeout_s: int, pool_size: int, max_overflow: int, echo: bool
) -> Engine:
    engine = create_engine(
        url.set(drivername="postgresql+psycopg2"),
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args={
            "connect_timeout": connect_timeout_s,
            "options": "-c timezone=UTC",
            "application_name": "soapattest",
        },
    )

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= PG_PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure: the pool reconnects
            raise sa_exc.DisconnectionError(f"stale connection: {exc}") from exc
        if not alive:
            raise sa_exc.DisconnectionError("stale connection")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # psycopg2 starts the transaction itself with the first statement; asking it
        # for READ ONLY makes that "BEGIN READ ONLY" (no extra round trip). Nothing
        # is sent here: a dead connection fails at its first statement, as usual.
        readonly = not conn.get_execution_options().get(WRITE_OPTION, True)
        raw = conn.connection.dbapi_connection
        if raw is not None and not raw.closed and raw.readonly is not readonly:
            raw.readonly = readonly

    return engine


_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: sa_exc.SQLAlchemyError) -> DatabaseError:
    """Map a SQLAlchemy exception to the store's error tree.

    Lost/refused connections, locked databases and pool timeouts become
    DatabaseUnavailableError (retrying later may work); anything else is a
    DatabaseError. The driver message is kept in ``reason``/the message; it
    never contains the database password.
    """
    reason = _reason(exc)
    is_disconnect = isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    if "readonly database" in reason:  # SQLite: a write in a read-only transaction (a bug)
        return DatabaseError(f"database error: {reason}")
    if isinstance(exc, _UNAVAILABLE) or is_disconnect:
        return DatabaseUnavailableError(f"database unavailable: {reason}", reason=reason)
    return DatabaseError(f"database error: {reason}")


@contextmanager
def db_errors() -> Iterator[None]:
    """Re-raise SQLAlchemy exceptions raised inside the block as store errors (see translate)."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        raise translate(exc) from exc


def _wrap(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with db_errors():
            return function(*args, **kwargs)

    return wrapper


def guarded(cls: type[T]) -> type[T]:
    """Class decorator: every public method maps database errors through :func:`translate`."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _wrap(member))
    return cls
