"""The audit log: append-only (the database refuses UPDATE and DELETE)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from soapattest.model import AuditRecord
from soapattest.store import convert, validate
from soapattest.store.core import connection, inserted_id, table
from soapattest.store.db import guarded
from soapattest.store.orm import AuditRow

_INSERT = insert(table(AuditRow))


def _values(
    *,
    actor: str,
    action: str,
    target_type: str,
    target: str,
    outcome: str,
    details: Mapping[str, Any] | None = None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "at": validate.utc(at, "at"),
        "actor": validate.name(actor, "actor", empty=True),
        "action": validate.name(action, "action", length=64),
        "target_type": validate.name(target_type, "target_type", length=64, empty=True),
        "target": validate.name(target, "target", empty=True),
        "outcome": validate.name(outcome, "outcome", length=32),
        "details": validate.json_object(details or {}, "details"),
    }


@guarded
class AuditRepository:
    """``tx.audit``. Recorded in the caller's transaction: the record of a change commits
    or rolls back together with the change itself."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def record(
        self,
        *,
        actor: str,
        action: str,
        target_type: str,
        target: str,
        outcome: str,
        details: Mapping[str, Any] | None = None,
        at: datetime,
    ) -> AuditRecord:
        """Append one record; returns it with ``record_id`` set.

        ``details`` must be JSON-serialisable (hex-encode bytes); never put
        secrets in it. Raises InvalidArgumentError.
        """
        values = _values(
            actor=actor,
            action=action,
            target_type=target_type,
            target=target,
            outcome=outcome,
            details=details,
            at=at,
        )
        result = connection(self._s).execute(_INSERT, values)
        return convert.audit_from_row(SimpleNamespace(id=inserted_id(result), **values))

    def record_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append many records in one executemany INSERT; each mapping has the keyword
        arguments of :meth:`record`. Returns how many. InvalidArgumentError (then the
        caller's transaction must roll back: nothing is appended)."""
        rows = [_values(**r) for r in records]
        if rows:
            connection(self._s).execute(_INSERT, rows)
        return len(rows)

    def list(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[builtins.list[AuditRecord], int]:
        """Records newest first, filtered by exact actor/action/target and
        ``since <= at < until``; one page and the total count. InvalidArgumentError."""
        offset, limit = validate.page(offset, limit)
        where: builtins.list[ColumnElement[bool]] = []
        if actor is not None:
            where.append(AuditRow.actor == actor)
        if action is not None:
            where.append(AuditRow.action == action)
        if target is not None:
            where.append(AuditRow.target == target)
        if since is not None:
            where.append(AuditRow.at >= validate.utc(since, "since"))
        if until is not None:
            where.append(AuditRow.at < validate.utc(until, "until"))
        total = self._s.scalar(select(func.count()).select_from(AuditRow).where(*where)) or 0
        rows = self._s.scalars(
            select(AuditRow)
            .where(*where)
            .order_by(AuditRow.at.desc(), AuditRow.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [convert.audit_from_row(r) for r in rows], total
