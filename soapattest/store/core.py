"""SQLAlchemy Core helpers for the hot repository methods.

The attestation paths (authentication, nonces, reports, evidence, audit,
quote state) run a handful of small statements per request. Through the ORM
each costs an entity load or a unit-of-work flush; as Core statements on the
session's connection they are compiled once (SQLAlchemy's statement cache) and
executed directly, in the same transaction as everything else the session does.

Rules for repositories using these: the ORM tables stay the schema (statements
are built from ``Row.__table__``); Core reads never see unflushed ORM objects,
so ORM-based methods keep flushing before they return (they all do); a Core
UPDATE of a table the ORM may have loaded in this transaction expires the
session's copies (:func:`expire`).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert


def table(entity: type[Any]) -> Table:
    """The Core table of an ORM row class."""
    return cast(Table, entity.__table__)


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row a single-row INSERT created."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def connection(session: Session) -> Connection:
    """The connection of the session's transaction (begun on first use)."""
    return session.connection()


_IGNORING: dict[tuple[str, str], Insert] = {}


def insert_ignoring_duplicates(session: Session, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the session's database: a row that
    would violate a unique constraint is skipped (rowcount 0) instead of failing,
    so the transaction stays usable (PostgreSQL aborts it on an error)."""
    dialect = connection(session).dialect.name
    key = (table.name, dialect)
    statement = _IGNORING.get(key)
    if statement is None:
        module = postgresql if dialect == "postgresql" else sqlite
        statement = _IGNORING[key] = module.insert(table).on_conflict_do_nothing()
    return statement


def expire(session: Session, entity: type[Any]) -> None:
    """Expire the session's loaded objects of ``entity`` (after a Core UPDATE of its
    table, so a later ORM read in the transaction sees the new values). Free when the
    transaction loaded none."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, entity):
            session.expire(obj)
