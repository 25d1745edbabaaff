"""Replay caches for WS-Security UsernameToken nonces.

A token is accepted while its wsu:Created is within the window around the
server's clock, so its Nonce has to be remembered (per user) until Created +
window; after that the token is refused as stale anyway and the entry can go.
Only nonces of *authenticated* tokens are remembered (the authenticator checks
the credential first), so an anonymous client cannot fill a cache.

Two implementations of :class:`NonceCache`:

- :class:`MemoryNonceCache`: one process, bounded (``capacity`` entries; when
  full of unexpired entries it refuses with ReplayCacheFullError rather than
  forget one). Enough for one worker; with several gunicorn workers or server
  nodes a replay could be accepted once per process.
- :class:`StoreNonceCache`: shared by every worker and node through the
  database; uses the existing ``nonces`` table (host ``wsse``, purpose
  ``wsse.nonce``, value SHA-256(user, nonce), unique constraint), so no
  migration is needed. One small INSERT per token that carries a nonce, in a
  transaction of its own (:meth:`StoreNonceCache.remember`) or in the caller's
  (:meth:`StoreNonceCache.within`, so that authentication is one transaction).
"""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from soapattest.errors import ReplayCacheFullError
from soapattest.store import Store, Tx

STORE_HOST = "wsse"
STORE_PURPOSE = "wsse.nonce"


def nonce_key(scope: str, nonce: bytes) -> bytes:
    """The fixed-size key remembered for ``nonce`` of user ``scope``."""
    data = scope.encode("utf-8")
    return hashlib.sha256(len(data).to_bytes(4, "big") + data + nonce).digest()


class NonceCache(Protocol):
    """Remembers nonces until they expire."""

    def remember(self, scope: str, nonce: bytes, *, now: datetime, expires_at: datetime) -> bool:
        """True when ``nonce`` was not seen for ``scope`` (it is remembered until
        ``expires_at``, which must be after ``now``); False for a replay.
        May raise ReplayCacheFullError (MemoryNonceCache) or database errors."""


class MemoryNonceCache:
    """An in-process :class:`NonceCache` with at most ``capacity`` entries. Thread-safe."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expiry, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expiry:
                del self._expiry[key]

    def remember(self, scope: str, nonce: bytes, *, now: datetime, expires_at: datetime) -> bool:
        """See :meth:`NonceCache.remember`."""
        if expires_at <= now:
            raise ValueError("expires_at must be after now")
        key = nonce_key(scope, nonce)
        now_ts, exp_ts = now.timestamp(), expires_at.timestamp()
        with self._lock:
            self._purge(now_ts)
            if key in self._expiry:
                return False
            if len(self._expiry) >= self.capacity:
                raise ReplayCacheFullError(
                    "too many recent authentications to check for replays; retry later",
                    capacity=self.capacity,
                )
            self._expiry[key] = exp_ts
            heapq.heappush(self._heap, (exp_ts, key))
            return True


class StoreNonceCache:
    """A :class:`NonceCache` in the database shared by all workers and nodes.

    Each :meth:`remember` is its own short write transaction. Expired rows of
    the ``nonces`` table (any purpose) are deleted at most every
    ``purge_interval`` seconds.
    """

    def __init__(
        self,
        store: Store,
        *,
        purge_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._purge_interval = purge_interval
        self._clock = clock
        self._next_purge = clock() + purge_interval
        self._lock = threading.Lock()

    def _due(self) -> bool:
        with self._lock:
            if self._clock() < self._next_purge:
                return False
            self._next_purge = self._clock() + self._purge_interval
            return True

    def remember(self, scope: str, nonce: bytes, *, now: datetime, expires_at: datetime) -> bool:
        """See :meth:`NonceCache.remember`. Database failures raise
        DatabaseUnavailableError/DatabaseError (the caller refuses the request)."""
        with self._store.transaction() as tx:
            return self.remember_in(tx, scope, nonce, now=now, expires_at=expires_at)

    def remember_in(
        self, tx: Tx, scope: str, nonce: bytes, *, now: datetime, expires_at: datetime
    ) -> bool:
        """:meth:`remember` inside the caller's write transaction ``tx``: the nonce counts
        as remembered only if ``tx`` commits. Of concurrent transactions remembering
        the same nonce exactly one gets True (the unique constraint decides; the
        others wait for it on SQLite/PostgreSQL and then see the duplicate)."""
        if expires_at <= now:
            raise ValueError("expires_at must be after now")
        if not tx.nonces.issue_if_new(STORE_HOST, nonce_key(scope, nonce), STORE_PURPOSE,
                                      now=now, expires_at=expires_at):
            return False  # the unique constraint: seen before
        if self._due():
            tx.nonces.purge_expired(now)
        return True

    def within(self, tx: Tx) -> NonceCache:
        """This cache as a :class:`NonceCache` that writes in ``tx`` (see
        :meth:`remember_in`)."""
        return _InTransaction(self, tx)


class _InTransaction:
    """A :class:`StoreNonceCache` bound to one transaction."""

    def __init__(self, cache: StoreNonceCache, tx: Tx) -> None:
        self._cache = cache
        self._tx = tx

    def remember(self, scope: str, nonce: bytes, *, now: datetime, expires_at: datetime) -> bool:
        """See :meth:`StoreNonceCache.remember_in`."""
        return self._cache.remember_in(self._tx, scope, nonce, now=now, expires_at=expires_at)
