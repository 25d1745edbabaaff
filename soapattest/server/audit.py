"""Auditing of use cases: who did what to which object, and how it ended.

A successful change records its audit entry inside the change's own
transaction (:meth:`AuditEntry.record`), so the change never exists without
its record. A refused or failed attempt is recorded afterwards in a
transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from soapattest.errors import SoapAttestError
from soapattest.server.context import ServerContext
from soapattest.store import Tx

log = logging.getLogger("soapattest.audit")


@dataclass
class AuditEntry:
    """One audited action in progress; ``details`` may be extended before recording."""

    ctx: ServerContext
    actor: str
    action: str
    target_type: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False

    def record(self, tx: Tx, outcome: str = "ok") -> None:
        """Record the entry in ``tx`` (the transaction that makes the change)."""
        tx.audit.record(
            actor=self.actor,
            action=self.action,
            target_type=self.target_type,
            target=self.target,
            outcome=outcome,
            details=self.details,
            at=self.ctx.clock(),
        )
        self.recorded = True

    def record_alone(self, outcome: str) -> None:
        """Record the entry in a transaction of its own (refusals, failures)."""
        try:
            with self.ctx.store.transaction() as tx:
                self.record(tx, outcome)
        except SoapAttestError:
            log.exception("could not write the audit record of %s on %s", self.action, self.target)


@contextmanager
def audited(
    ctx: ServerContext,
    actor: str,
    action: str,
    target_type: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> Iterator[AuditEntry]:
    """Audit the enclosed use case: refusals and failures are recorded and re-raised."""
    entry = AuditEntry(ctx, actor, action, target_type, target, dict(details or {}))
    try:
        yield entry
    except SoapAttestError as exc:
        entry.details["reason"] = exc.message[:500]
        entry.record_alone(f"refused:{exc.code}")
        raise
    except Exception:
        entry.record_alone("error:Server.Internal")
        raise
    if not entry.recorded:
        entry.record_alone("ok")
