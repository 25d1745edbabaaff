"""Evidence blobs (event logs, IMA lists), content-addressed by SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from soapattest.store import validate
from soapattest.store.core import connection, insert_ignoring_duplicates, table
from soapattest.store.db import guarded
from soapattest.store.orm import EvidenceRow

_BLOBS = table(EvidenceRow)
_KNOWN = select(_BLOBS.c.sha256).where(_BLOBS.c.sha256 == bindparam("digest"))
_DATA = select(_BLOBS.c.data).where(_BLOBS.c.sha256 == bindparam("digest"))
_DATA_MANY = select(_BLOBS.c.sha256, _BLOBS.c.data).where(
    _BLOBS.c.sha256.in_(bindparam("digests", expanding=True))
)
_CHUNK = 500  # digests per query


@guarded
class EvidenceRepository:
    """``tx.evidence``: put once, read by digest. Reports refer to evidence by digest."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._stored: set[bytes] = set()  # digests known to be in the database (this tx)

    def put(self, data: bytes, kind: str, *, now: datetime) -> bytes:
        """Store ``data`` unless already there; return its SHA-256.

        Blobs are immutable, so a digest seen in this transaction is not looked up
        again (bulk attestation stores the same event log for many hosts)."""
        validate.blob(data, "data")
        digest = hashlib.sha256(data).digest()
        if digest in self._stored:
            return digest
        kind = validate.name(kind, "kind", length=32)
        now = validate.utc(now, "now")
        conn = connection(self._s)
        if conn.execute(_KNOWN, {"digest": digest}).first() is None:
            # A concurrent transaction may store the same bytes first: same content, and
            # ON CONFLICT DO NOTHING keeps this transaction going.
            conn.execute(
                insert_ignoring_duplicates(self._s, _BLOBS),
                {"sha256": digest, "kind": kind, "size": len(data), "data": data,
                 "created_at": now},
            )
        self._stored.add(digest)
        return digest

    def get(self, sha256: bytes) -> bytes | None:
        """The bytes with this SHA-256, or None."""
        row = connection(self._s).execute(_DATA, {"digest": sha256}).first()
        return bytes(row[0]) if row is not None else None

    def get_many(self, digests: Iterable[bytes]) -> dict[bytes, bytes]:
        """Digest -> bytes for those of ``digests`` that are stored (one query per 500).
        Each blob is checked against its digest: a row whose bytes do not hash to it
        (a damaged or tampered database) is left out, as if it were not stored."""
        wanted = sorted(set(digests))
        out: dict[bytes, bytes] = {}
        conn = connection(self._s)
        for start in range(0, len(wanted), _CHUNK):
            rows = conn.execute(_DATA_MANY, {"digests": wanted[start : start + _CHUNK]})
            for digest, data in rows:
                blob = bytes(data)
                if hashlib.sha256(blob).digest() == bytes(digest):
                    out[bytes(digest)] = blob
        self._stored.update(out)
        return out
