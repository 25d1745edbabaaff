"""The in-process nonce replay cache."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from soapattest.errors import ReplayCacheFullError
from soapattest.security.nonces import MemoryNonceCache, nonce_key

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW = timedelta(seconds=300)


def test_first_use_accepted_replay_refused() -> None:
    cache = MemoryNonceCache()
    assert cache.remember("alice", b"n" * 16, now=T0, expires_at=T0 + WINDOW) is True
    assert cache.remember("alice", b"n" * 16, now=T0, expires_at=T0 + WINDOW) is False
    assert cache.remember("alice", b"m" * 16, now=T0, expires_at=T0 + WINDOW) is True


def test_scopes_are_separate() -> None:
    cache = MemoryNonceCache()
    assert cache.remember("alice", b"n" * 16, now=T0, expires_at=T0 + WINDOW)
    assert cache.remember("bob", b"n" * 16, now=T0, expires_at=T0 + WINDOW)
    assert nonce_key("a", b"bc") != nonce_key("ab", b"c")  # no ambiguity in the key


def test_forgotten_after_expiry() -> None:
    cache = MemoryNonceCache()
    assert cache.remember("alice", b"n" * 16, now=T0, expires_at=T0 + WINDOW)
    later = T0 + WINDOW - timedelta(seconds=1)
    assert cache.remember("alice", b"n" * 16, now=later, expires_at=later + WINDOW) is False
    after = T0 + WINDOW
    assert cache.remember("alice", b"n" * 16, now=after, expires_at=after + WINDOW) is True


def test_full_cache_refuses_rather_than_forgets() -> None:
    cache = MemoryNonceCache(capacity=2)
    assert cache.remember("a", b"1" * 16, now=T0, expires_at=T0 + WINDOW)
    assert cache.remember("a", b"2" * 16, now=T0, expires_at=T0 + WINDOW)
    with pytest.raises(ReplayCacheFullError) as info:
        cache.remember("a", b"3" * 16, now=T0, expires_at=T0 + WINDOW)
    assert info.value.code == "Server.Busy"
    # the refused nonce was not remembered, the old ones still are
    assert cache.remember("a", b"1" * 16, now=T0, expires_at=T0 + WINDOW) is False
    # once entries expire there is room again
    after = T0 + WINDOW
    assert cache.remember("a", b"3" * 16, now=after, expires_at=after + WINDOW) is True
    assert len(cache) == 1


def test_expiry_must_be_in_the_future() -> None:
    with pytest.raises(ValueError):
        MemoryNonceCache().remember("a", b"1" * 16, now=T0, expires_at=T0)


def test_concurrent_replays_one_winner() -> None:
    cache = MemoryNonceCache()
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        ok = cache.remember("alice", b"z" * 16, now=T0, expires_at=T0 + WINDOW)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
