"""Evidence blobs (event logs, IMA lists), content-addressed by SHA-256."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from soapattest.store import validate
from soapattest.store.db import guarded
from soapattest.store.orm import EvidenceRow


@guarded
class EvidenceRepository:
    """``tx.evidence``: put once, read by digest. Reports refer to evidence by digest."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def put(self, data: bytes, kind: str, *, now: datetime) -> bytes:
        """Store ``data`` unless already there; return its SHA-256."""
        validate.blob(data, "data")
        digest = hashlib.sha256(data).digest()
        known = self._s.scalar(select(EvidenceRow.sha256).where(EvidenceRow.sha256 == digest))
        if known is None:
            row = EvidenceRow(
                sha256=digest,
                kind=validate.name(kind, "kind", length=32),
                size=len(data),
                data=data,
                created_at=validate.utc(now, "now"),
            )
            try:
                with self._s.begin_nested():  # a savepoint: losing a race keeps the transaction
                    self._s.add(row)
            except sa_exc.IntegrityError:
                pass  # a concurrent transaction stored the same bytes first: same content
        return digest

    def get(self, sha256: bytes) -> bytes | None:
        """The bytes with this SHA-256, or None."""
        row = self._s.execute(
            select(EvidenceRow.data).where(EvidenceRow.sha256 == sha256)
        ).scalar_one_or_none()
        return bytes(row) if row is not None else None
