"""Audit records: who did what to which object, when, and with which outcome."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One entry of the append-only audit log.

    ``action`` is a stable verb (``host.register``, ``whitelist.add_entries``,
    ``attest``...), ``target_type``/``target`` name the object acted on,
    ``outcome`` is ``success``/``failure``/``denied`` or a trust status, and
    ``details`` holds JSON-serialisable context (never secrets).
    ``record_id`` is assigned by the store (0 before it is stored).
    """

    at: datetime
    actor: str
    action: str
    target_type: str
    target: str
    outcome: str
    details: Mapping[str, Any] = field(default_factory=dict)
    record_id: int = 0
