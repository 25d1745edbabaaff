"""Nonces: single use, bound to a host and a purpose, with an expiry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from soapattest.errors import InvalidArgumentError
from soapattest.store import validate
from soapattest.store.db import guarded
from soapattest.store.orm import NonceRow


@guarded
class NonceRepository:
    """``tx.nonces``. Consumption is one conditional UPDATE, so of any number of concurrent
    consumers (threads, processes, server nodes) exactly one wins."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def issue(
        self, host: str, value: bytes, purpose: str, *, now: datetime, expires_at: datetime
    ) -> None:
        """Record nonce ``value`` for ``host`` and ``purpose``, valid until ``expires_at``
        (exclusive). The host need not be registered yet (registration nonces).
        Raises InvalidArgumentError (empty value, expiry not after now, value already
        issued for this host and purpose)."""
        now = validate.utc(now, "now")
        expires_at = validate.utc(expires_at, "expires_at")
        if expires_at <= now:
            raise InvalidArgumentError("expires_at must be after now", argument="expires_at")
        self._s.add(
            NonceRow(
                host=validate.name(host, "host"),
                purpose=validate.name(purpose, "purpose", length=64),
                value=validate.blob(value, "value"),
                issued_at=now,
                expires_at=expires_at,
                consumed_at=None,
            )
        )
        try:
            self._s.flush()
        except sa_exc.IntegrityError as exc:
            raise InvalidArgumentError(
                "this nonce was already issued for this host and purpose", argument="value"
            ) from exc

    def consume(self, host: str, value: bytes, purpose: str, *, now: datetime) -> bool:
        """Use the nonce: True only for the first consumer of an issued, unexpired nonce of
        this host and purpose; False for a replay, an expired, unknown or foreign nonce.

        Security: the check and the marking are one atomic UPDATE; do not replace it
        with a read followed by a write.
        """
        now = validate.utc(now, "now")
        if not isinstance(value, bytes) or not value:
            return False
        result = self._s.execute(
            update(NonceRow)
            .where(
                NonceRow.host == host,
                NonceRow.purpose == purpose,
                NonceRow.value == value,
                NonceRow.consumed_at.is_(None),
                NonceRow.expires_at > now,
            )
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        return getattr(result, "rowcount", 0) == 1

    def purge_expired(self, now: datetime) -> int:
        """Delete nonces whose expiry has passed (consumed or not); returns how many.
        A purged nonce can never be consumed (it is unknown, hence refused)."""
        now = validate.utc(now, "now")
        result = self._s.execute(
            delete(NonceRow)
            .where(NonceRow.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0))
