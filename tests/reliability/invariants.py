"""What must hold in the store after any fault: the checks behind "nothing half-written".

:func:`snapshot` reads, in one read-only transaction of a fresh :class:`Store`, every
trust report, every ``trust.decision`` audit record and every quote nonce the server
issued to agents. :func:`check_consistent` then asserts:

- every report is complete: it parses back into a :class:`TrustReport`, has checks,
  a policy, and a status that is exactly the verdict of its checks (a TRUSTED report
  also carries verified PCRs and the quote's clock state);
- reports and decision records match one to one: each report has exactly one
  ``trust.decision`` record naming its id, host and status, and each record names a
  stored report;
- every quote nonce is single use with a bounded life: it expires ``nonce_ttl`` s
  after issue, and if consumed, was consumed before it expired.

:func:`new_reports` and :func:`new_nonces` give what one call added, by host.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from soapattest.model import AuditRecord, TrustReport, TrustStatus
from soapattest.model.trust import overall_status
from soapattest.store import Store
from soapattest.store.db import WRITE_OPTION
from soapattest.store.orm import NonceRow

PULL_PURPOSE = "attest"  # soapattest.server.attestation.PULL_PURPOSE
PAGE = 1000


@dataclass(frozen=True, slots=True)
class NonceState:
    """One quote nonce as stored."""

    host: str
    issued_at: datetime
    expires_at: datetime
    consumed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Reports (oldest first), decision records and quote nonces at one moment."""

    reports: tuple[TrustReport, ...]
    decisions: tuple[AuditRecord, ...]
    nonces: tuple[NonceState, ...]

    @property
    def last_report_id(self) -> int:
        return max((r.report_id for r in self.reports), default=0)


class InvariantError(AssertionError):
    """A stored state that a fault must never leave behind."""


def snapshot(db_url: str) -> Snapshot:
    """Read the whole attestation history of the database at ``db_url``."""
    store = Store(db_url, busy_timeout_ms=30_000)
    try:
        with store.transaction(readonly=True) as tx:
            reports: list[TrustReport] = []
            while True:
                page, total = tx.reports.list(offset=len(reports), limit=PAGE)
                reports.extend(page)
                if not page or len(reports) >= total:
                    break
            decisions: list[AuditRecord] = []
            while True:
                records, total = tx.audit.list(
                    action="trust.decision", offset=len(decisions), limit=PAGE
                )
                decisions.extend(records)
                if not records or len(decisions) >= total:
                    break
        readonly = store.engine.execution_options(**{WRITE_OPTION: False})
        with Session(readonly) as session:
            rows = session.scalars(select(NonceRow).where(NonceRow.purpose == PULL_PURPOSE))
            nonces = tuple(
                NonceState(r.host, r.issued_at, r.expires_at, r.consumed_at) for r in rows
            )
    finally:
        store.close()
    reports.sort(key=lambda r: r.report_id)
    return Snapshot(tuple(reports), tuple(decisions), nonces)


def _fail(message: str) -> NoReturn:
    raise InvariantError(message)


def check_report(report: TrustReport) -> None:
    """One report is complete and its status is the verdict of its checks."""
    rid = report.report_id
    if not report.checks:
        _fail(f"report {rid} of {report.host} has no checks")
    if report.status is not overall_status(report.checks):
        _fail(f"report {rid}: status {report.status} is not the verdict of its checks")
    if not report.policy or report.policy_version is None:
        _fail(f"report {rid} names no policy version")
    if report.status is TrustStatus.TRUSTED and (
        not report.pcrs or report.reset_count is None or report.clock is None
    ):
        _fail(f"TRUSTED report {rid} lacks verified PCRs or the quote's clock state")


def check_consistent(snap: Snapshot, *, nonce_ttl: int) -> None:
    """Every invariant of the module docstring; raises :class:`InvariantError`."""
    by_id = {r.report_id: r for r in snap.reports}
    if len(by_id) != len(snap.reports):
        _fail("two reports share an id")
    for report in snap.reports:
        check_report(report)
    records: dict[int, list[AuditRecord]] = defaultdict(list)
    for record in snap.decisions:
        rid = record.details.get("report_id")
        if not isinstance(rid, int) or rid not in by_id:
            _fail(f"audit record {record.record_id} names no stored report ({rid!r})")
        records[rid].append(record)
    for rid, report in by_id.items():
        found = records.get(rid, [])
        if len(found) != 1:
            _fail(f"report {rid} of {report.host} has {len(found)} trust.decision records")
        record = found[0]
        if (record.target, record.outcome) != (report.host, report.status.value):
            _fail(f"report {rid}: audit says {record.target}/{record.outcome}")
    ttl = timedelta(seconds=nonce_ttl)
    for nonce in snap.nonces:
        if nonce.expires_at - nonce.issued_at != ttl:
            _fail(f"a nonce of {nonce.host} lives {nonce.expires_at - nonce.issued_at}, not {ttl}")
        if nonce.consumed_at is not None and not (
            nonce.issued_at <= nonce.consumed_at < nonce.expires_at
        ):
            _fail(f"a nonce of {nonce.host} was consumed outside its life")


def new_reports(before: Snapshot, after: Snapshot) -> dict[str, list[TrustReport]]:
    """Reports in ``after`` that ``before`` did not have, by host (oldest first)."""
    out: dict[str, list[TrustReport]] = defaultdict(list)
    for report in after.reports:
        if report.report_id > before.last_report_id:
            out[report.host].append(report)
    return dict(out)


def new_nonces(snap: Snapshot, since: datetime) -> dict[str, list[NonceState]]:
    """Quote nonces issued at or after ``since``, by host."""
    out: dict[str, list[NonceState]] = defaultdict(list)
    for nonce in snap.nonces:
        if nonce.issued_at >= since:
            out[nonce.host].append(nonce)
    return dict(out)
