"""Trust reports: immutable, append-only (the database refuses UPDATE and DELETE)."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from soapattest.errors import InvalidArgumentError, ReportNotFoundError
from soapattest.model import TrustReport, TrustStatus
from soapattest.store import convert, validate
from soapattest.store.db import guarded
from soapattest.store.orm import HostRow, TrustReportRow
from soapattest.store.queries import active_host

_CHUNK = 500  # host names per IN (...) list in latest_many


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
        host = active_host(self._s, values["host"])
        row = TrustReportRow(host_id=host.id, **values)
        self._s.add(row)
        self._s.flush()
        return convert.report_from_row(row)

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
