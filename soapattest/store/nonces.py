"""Nonces: single use, bound to a host and a purpose, with an expiry."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from soapattest.errors import InvalidArgumentError
from soapattest.store import validate
from soapattest.store.core import connection, insert_ignoring_duplicates, table
from soapattest.store.db import guarded
from soapattest.store.orm import NonceRow

_NONCES = table(NonceRow)
_INSERT = insert(_NONCES)
_USABLE = select(_NONCES.c.id).where(
    _NONCES.c.host == bindparam("b_host"),
    _NONCES.c.purpose == bindparam("b_purpose"),
    _NONCES.c.value == bindparam("b_value"),
    _NONCES.c.consumed_at.is_(None),
    _NONCES.c.expires_at > bindparam("b_now"),
)
_CONSUME = (
    update(_NONCES)
    .where(
        _NONCES.c.host == bindparam("b_host"),
        _NONCES.c.purpose == bindparam("b_purpose"),
        _NONCES.c.value == bindparam("b_value"),
        _NONCES.c.consumed_at.is_(None),
        _NONCES.c.expires_at > bindparam("b_now"),
    )
    .values(consumed_at=bindparam("b_now"))
)


def _values(
    host: str, value: bytes, purpose: str, now: datetime, expires_at: datetime
) -> dict[str, Any]:
    now = validate.utc(now, "now")
    expires_at = validate.utc(expires_at, "expires_at")
    if expires_at <= now:
        raise InvalidArgumentError("expires_at must be after now", argument="expires_at")
    return {
        "host": validate.name(host, "host"),
        "purpose": validate.name(purpose, "purpose", length=64),
        "value": validate.blob(value, "value"),
        "issued_at": now,
        "expires_at": expires_at,
        "consumed_at": None,
    }


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
        issued for this host and purpose; after the last one the transaction is
        unusable on PostgreSQL - see :meth:`issue_if_new`)."""
        row = _values(host, value, purpose, now, expires_at)
        try:
            connection(self._s).execute(_INSERT, row)
        except sa_exc.IntegrityError as exc:
            raise InvalidArgumentError(
                "this nonce was already issued for this host and purpose", argument="value"
            ) from exc

    def issue_if_new(
        self, host: str, value: bytes, purpose: str, *, now: datetime, expires_at: datetime
    ) -> bool:
        """:meth:`issue`, but a value already issued for this host and purpose is not an
        error: returns False (and the transaction stays usable); True when recorded.
        Concurrent callers with the same value: exactly one gets True (the unique
        constraint decides). Raises InvalidArgumentError for malformed arguments."""
        row = _values(host, value, purpose, now, expires_at)
        statement = insert_ignoring_duplicates(self._s, _NONCES)
        result = connection(self._s).execute(statement, row)
        return result.rowcount == 1

    def issue_many(
        self,
        nonces: Iterable[tuple[str, bytes]],
        purpose: str,
        *,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """:meth:`issue` for many (host, value) pairs in one executemany INSERT.
        InvalidArgumentError as :meth:`issue` (nothing of a failed call is kept once
        the transaction rolls back)."""
        rows = [_values(h, v, purpose, now, expires_at) for h, v in nonces]
        if not rows:
            return
        try:
            connection(self._s).execute(_INSERT, rows)
        except sa_exc.IntegrityError as exc:
            raise InvalidArgumentError(
                "a nonce was already issued for this host and purpose", argument="value"
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
        result = connection(self._s).execute(
            _CONSUME, {"b_host": host, "b_purpose": purpose, "b_value": value, "b_now": now}
        )
        return result.rowcount == 1

    def usable(self, host: str, value: bytes, purpose: str, *, now: datetime) -> bool:
        """Whether :meth:`consume` would succeed now (issued for this host and purpose,
        unexpired, unused). A cheap early refusal only: it decides nothing, since a
        concurrent consumer may still win; :meth:`consume` is the check that counts."""
        now = validate.utc(now, "now")
        if not isinstance(value, bytes) or not value:
            return False
        params = {"b_host": host, "b_purpose": purpose, "b_value": value, "b_now": now}
        return connection(self._s).execute(_USABLE, params).first() is not None

    def consume_many(
        self, nonces: Iterable[tuple[str, bytes]], purpose: str, *, now: datetime
    ) -> builtins.list[bool]:
        """:meth:`consume` for each (host, value) pair, in order (one UPDATE each: which
        of them succeeded matters)."""
        return [self.consume(h, v, purpose, now=now) for h, v in nonces]

    def purge_expired(self, now: datetime) -> int:
        """Delete nonces whose expiry has passed (consumed or not); returns how many.
        A purged nonce can never be consumed (it is unknown, hence refused)."""
        now = validate.utc(now, "now")
        result = connection(self._s).execute(delete(_NONCES).where(_NONCES.c.expires_at <= now))
        return int(result.rowcount)
