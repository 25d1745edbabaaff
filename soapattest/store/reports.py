"""Trust reports: immutable, append-only (the database refuses UPDATE and DELETE)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from soapattest.errors import InvalidArgumentError, ReportNotFoundError, UnknownHostError
from soapattest.model import TrustReport, TrustStatus
from soapattest.store import convert, validate
from soapattest.store.core import connection, inserted_id, table
from soapattest.store.db import guarded
from soapattest.store.orm import HostRow, TrustReportRow

_CHUNK = 500  # host names per IN (...) list in latest_many
_HOSTS = table(HostRow)
_REPORTS = table(TrustReportRow)
_ACTIVE_ID = select(_HOSTS.c.id).where(
    _HOSTS.c.name == bindparam("name"), _HOSTS.c.deleted_at.is_(None)
)
_ACTIVE_IDS = select(_HOSTS.c.name, _HOSTS.c.id).where(
    _HOSTS.c.name.in_(bindparam("names", expanding=True)), _HOSTS.c.deleted_at.is_(None)
)
_INSERT = insert(_REPORTS)
_INSERT_MANY = insert(_REPORTS).returning(_REPORTS.c.id, sort_by_parameter_order=True)


def _stored(values: dict[str, Any], report_id: int) -> TrustReport:
    """The report as :meth:`ReportRepository.get` would return it, from the inserted values."""
    return convert.report_from_row(SimpleNamespace(id=report_id, **values))


def _unknown(name: str) -> UnknownHostError:
    return UnknownHostError(f"no host named {name!r}", name=name)


def _latest_of_active_hosts() -> Select[TrustReportRow]:
    """Newest report of each active host registration (index: host_id, created_at, id)."""
    newer = aliased(TrustReportRow)
    newest_id = (
        select(newer.id)
        .where(newer.host_id == HostRow.id)
        .order_by(newer.created_at.desc(), newer.id.desc())
        .limit(1)
        .correlate(HostRow)
        .scalar_subquery()
    )
    return (
        select(TrustReportRow)
        .join(HostRow, HostRow.id == TrustReportRow.host_id)
        .where(HostRow.deleted_at.is_(None), TrustReportRow.id == newest_id)
    )


@guarded
class ReportRepository:
    """``tx.reports``. A report belongs to the host registration that was active when it
    was added: after a host is deleted and registered again, ``latest`` ignores the old
    registration's reports, while ``list(host=...)`` shows the name's whole history."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, report: TrustReport) -> TrustReport:
        """Store ``report``; returns it with ``report_id`` set (the given one is ignored).

        Raises UnknownHostError (no active host has ``report.host``),
        InvalidArgumentError (malformed fields, naive ``created_at``).
        """
        values = convert.report_values(report)
        conn = connection(self._s)
        host_id = conn.execute(_ACTIVE_ID, {"name": values["host"]}).scalar_one_or_none()
        if host_id is None:
            raise _unknown(values["host"])
        result = conn.execute(_INSERT, {"host_id": host_id, **values})
        return _stored(values, inserted_id(result))

    def add_many(self, reports: Sequence[TrustReport]) -> builtins.list[TrustReport]:
        """:meth:`add` for many reports, in order, with one host lookup and one
        multi-row INSERT. Raises as :meth:`add` (for the first bad report; the
        caller's transaction must then roll back: nothing is stored)."""
        values = [convert.report_values(r) for r in reports]
        if not values:
            return []
        conn = connection(self._s)
        names = sorted({v["host"] for v in values})
        ids: dict[str, int] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            ids.update((n, i) for n, i in conn.execute(_ACTIVE_IDS, {"names": chunk}))
        for v in values:
            if v["host"] not in ids:
                raise _unknown(v["host"])
        rows = [{"host_id": ids[v["host"]], **v} for v in values]
        new_ids = conn.execute(_INSERT_MANY, rows).scalars().all()
        return [_stored(v, i) for v, i in zip(values, new_ids, strict=True)]

    def get(self, report_id: int) -> TrustReport:
        """The report with this id. ReportNotFoundError."""
        if isinstance(report_id, bool) or not isinstance(report_id, int):
            raise InvalidArgumentError("report_id must be an integer", argument="report_id")
        row = self._s.get(TrustReportRow, report_id) if report_id > 0 else None
        if row is None:
            raise ReportNotFoundError(f"no trust report {report_id}", report_id=report_id)
        return convert.report_from_row(row)

    def latest(self, host: str) -> TrustReport | None:
        """The newest report (by ``created_at``, then id) of the active host ``host``, or None
        (also when no active host has the name)."""
        row = self._s.scalars(_latest_of_active_hosts().where(HostRow.name == host)).one_or_none()
        return None if row is None else convert.report_from_row(row)

    def latest_many(self, hosts: builtins.list[str]) -> dict[str, TrustReport]:
        """Host name -> newest report, for the active hosts among ``hosts`` that have one.
        One query (per 500 names)."""
        names = sorted({validate.text(h, "hosts") for h in hosts})
        out: dict[str, TrustReport] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            for row in self._s.scalars(_latest_of_active_hosts().where(HostRow.name.in_(chunk))):
                out[row.host] = convert.report_from_row(row)
        return out

    def list(
        self,
        *,
        host: str | None = None,
        status: TrustStatus | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[builtins.list[TrustReport], int]:
        """Reports newest first, filtered by host name, status and ``since <= created_at <
        until``; one page and the total count. InvalidArgumentError for bad filters."""
        offset, limit = validate.page(offset, limit)
        where: builtins.list[ColumnElement[bool]] = []
        if host is not None:
            where.append(TrustReportRow.host == host)
        if status is not None:
            try:
                where.append(TrustReportRow.status == TrustStatus(status).value)
            except ValueError as exc:
                raise InvalidArgumentError(f"unknown status {status!r}", argument="status") from exc
        if since is not None:
            where.append(TrustReportRow.created_at >= validate.utc(since, "since"))
        if until is not None:
            where.append(TrustReportRow.created_at < validate.utc(until, "until"))
        total = self._s.scalar(select(func.count()).select_from(TrustReportRow).where(*where)) or 0
        rows = self._s.scalars(
            select(TrustReportRow)
            .where(*where)
            .order_by(TrustReportRow.created_at.desc(), TrustReportRow.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [convert.report_from_row(r) for r in rows], total
