"""Alembic environment of the soapattest store.

Programmatic use (``Store.upgrade``): the caller passes an open connection in
``config.attributes["connection"]`` and owns its transaction. Command-line use
(developers: ``alembic -c soapattest/store/migrations/alembic.ini ...``): the
URL comes from ``-x url=...`` or the SOAPATTEST_DATABASE_URL environment
variable, never from a file.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from soapattest.store.db import create_store_engine, parse_url
from soapattest.store.orm import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "SOAPATTEST_DATABASE_URL", ""
    )
    if not url:
        raise SystemExit("give the database URL: alembic -x url=... or SOAPATTEST_DATABASE_URL")
    return url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=parse_url(_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_store_engine(parse_url(_url()))
    try:
        with engine.connect() as own:
            _configure(own)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
