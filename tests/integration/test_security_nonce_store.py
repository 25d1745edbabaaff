"""The database-backed UsernameToken nonce cache, shared by workers (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

from soapattest.security.nonces import STORE_HOST, STORE_PURPOSE, StoreNonceCache, nonce_key
from soapattest.store import Store

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)
WINDOW = timedelta(seconds=300)


def second_worker(store: Store) -> Store:
    """Another Store on the same database, as another gunicorn worker would have."""
    return Store(store.engine.url.render_as_string(hide_password=False))


def test_replay_refused_across_workers(store: Store) -> None:
    other = second_worker(store)
    try:
        a, b = StoreNonceCache(store), StoreNonceCache(other)
        nonce = os.urandom(16)
        assert a.remember("alice", nonce, now=T0, expires_at=T0 + WINDOW) is True
        assert b.remember("alice", nonce, now=T0, expires_at=T0 + WINDOW) is False
        assert a.remember("alice", nonce, now=T0, expires_at=T0 + WINDOW) is False
        assert b.remember("bob", nonce, now=T0, expires_at=T0 + WINDOW) is True
        assert b.remember("alice", os.urandom(16), now=T0, expires_at=T0 + WINDOW) is True
    finally:
        other.close()


def test_concurrent_replays_one_winner(store: Store) -> None:
    other = second_worker(store)
    try:
        caches = [StoreNonceCache(store), StoreNonceCache(other)]
        nonce = os.urandom(16)
        results: list[bool] = []
        lock = threading.Lock()
        barrier = threading.Barrier(6)

        def worker(i: int) -> None:
            barrier.wait()
            ok = caches[i % 2].remember("alice", nonce, now=T0, expires_at=T0 + WINDOW)
            with lock:
                results.append(ok)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False] * 5 + [True]
    finally:
        other.close()


def test_only_a_digest_of_the_nonce_is_stored(store: Store) -> None:
    nonce = os.urandom(16)
    StoreNonceCache(store).remember("alice", nonce, now=T0, expires_at=T0 + WINDOW)
    with store.transaction() as tx:
        # the row is the ordinary nonce row of host "wsse", consumable only by this purpose
        assert tx.nonces.consume(STORE_HOST, nonce_key("alice", nonce), STORE_PURPOSE,
                                 now=T0) is True
        assert tx.nonces.consume(STORE_HOST, nonce, STORE_PURPOSE, now=T0) is False


def test_expired_rows_purged_and_nonce_forgotten(store: Store) -> None:
    clock = [0.0]
    cache = StoreNonceCache(store, purge_interval=10, clock=lambda: clock[0])
    nonce = os.urandom(16)
    assert cache.remember("alice", nonce, now=T0, expires_at=T0 + WINDOW)
    later = T0 + WINDOW + timedelta(seconds=1)
    clock[0] = 11  # purge due at the next remember
    assert cache.remember("alice", os.urandom(16), now=later, expires_at=later + WINDOW)
    with store.transaction() as tx:
        assert tx.nonces.purge_expired(later) == 0  # already purged by the cache
    # an expired nonce is no longer remembered (its token is stale by then anyway)
    assert cache.remember("alice", nonce, now=later, expires_at=later + WINDOW) is True
