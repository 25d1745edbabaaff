"""The database-backed UsernameToken nonce cache, shared by workers (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from soapattest.errors import BadCredentialsError, ReplayedNonceError
from soapattest.security.credentials import DigestKey
from soapattest.security.nonces import STORE_HOST, STORE_PURPOSE, StoreNonceCache, nonce_key
from soapattest.security.passwords import hash_password
from soapattest.security.users import ensure_user
from soapattest.security.wssecurity import Authenticator, build_security_header
from soapattest.store import Store
from soapattest.store.db import WRITE_OPTION

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)
WINDOW = timedelta(seconds=300)
PASSWORD = "correct horse battery staple"
KEY = DigestKey(os.urandom(32))


def _race(attempt: Callable[[int], bool], threads: int = 6) -> list[bool]:
    """``attempt(i)`` in ``threads`` threads released at once; their answers."""
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker(i: int) -> None:
        barrier.wait()
        ok = attempt(i)
        with lock:
            results.append(ok)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return results


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
        results = _race(
            lambda i: caches[i % 2].remember("alice", nonce, now=T0, expires_at=T0 + WINDOW)
        )
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


# ------------------------------------------------------------- in the caller's transaction


def test_remember_in_counts_only_when_the_transaction_commits(store: Store) -> None:
    cache = StoreNonceCache(store)
    nonce = os.urandom(16)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        assert cache.within(tx).remember("alice", nonce, now=T0, expires_at=T0 + WINDOW)
        raise RuntimeError("the request failed after authentication")
    # rolled back: not remembered, so the same token is accepted once more (twin)
    with store.transaction() as tx:
        assert cache.remember_in(tx, "alice", nonce, now=T0, expires_at=T0 + WINDOW) is True
        assert cache.remember_in(tx, "alice", nonce, now=T0, expires_at=T0 + WINDOW) is False
    assert cache.remember("alice", nonce, now=T0, expires_at=T0 + WINDOW) is False


def test_concurrent_replays_in_transactions_one_winner(store: Store) -> None:
    other = second_worker(store)
    try:
        stores = [store, other]
        cache = StoreNonceCache(store)
        nonce = os.urandom(16)
        def attempt(i: int) -> bool:
            with stores[i % 2].transaction() as tx:
                return cache.within(tx).remember("alice", nonce, now=T0, expires_at=T0 + WINDOW)

        results = _race(attempt)
        assert sorted(results) == [False] * 5 + [True]
    finally:
        other.close()


def test_authenticate_in_one_transaction(store: Store) -> None:
    ensure_user(store, "alice", PASSWORD, ("attester",), actor="test", now=T0, digest_key=KEY)
    auth = Authenticator(nonce_cache=StoreNonceCache(store), digest_key=KEY)
    now = datetime.now(UTC)
    header = build_security_header("alice", PASSWORD, now=now)
    with store.transaction() as tx:
        principal = auth.authenticate_in(tx, header, now=now, secure=False)
    assert (principal.name, principal.roles, principal.method) == (
        "alice", ("attester",), "PasswordDigest"
    )
    with pytest.raises(ReplayedNonceError), store.transaction() as tx:
        auth.authenticate_in(tx, header, now=now, secure=False)
    # the replay is refused by the authenticator's own path too: one shared cache
    with pytest.raises(ReplayedNonceError), store.transaction(readonly=True) as tx:
        auth.authenticate(header, users=tx.users, now=now, secure=False)
    with pytest.raises(BadCredentialsError), store.transaction() as tx:
        auth.authenticate_in(tx, build_security_header("alice", "wrong password!!", now=now),
                             now=now, secure=False)
    with store.transaction() as tx:  # a bad credential remembered nothing
        assert tx.nonces.purge_expired(now + timedelta(days=1)) == 1


class _Begins:
    """Counts the write and read-only transactions a Store begins."""

    def __init__(self, store: Store) -> None:
        self.write = self.read = 0
        event.listen(store.engine, "begin", self._on_begin)

    def _on_begin(self, conn: Any) -> None:
        if conn.get_execution_options().get(WRITE_OPTION, True):
            self.write += 1
        else:
            self.read += 1

    def take(self) -> tuple[int, int]:
        out = (self.write, self.read)
        self.write = self.read = 0
        return out


def test_request_path_admits_a_returning_caller_in_one_write_transaction(store: Store) -> None:
    ensure_user(store, "carol", PASSWORD, ("reader",), actor="test", now=T0)
    auth = Authenticator(nonce_cache=StoreNonceCache(store))
    begins = _Begins(store)

    def call(password: str = PASSWORD) -> Any:
        now = datetime.now(UTC)
        header = build_security_header("carol", password, mode="text", now=now)
        return auth.authenticate_request(store, header, now=now, secure=True), header, now

    principal, _, _ = call()  # first call: read (lookup), hash, write (replay cache)
    assert principal.roles == ("reader",) and begins.take() == (1, 1)
    principal, header, now = call()  # returning caller: one write transaction
    assert principal.roles == ("reader",) and begins.take() == (1, 0)
    with pytest.raises(ReplayedNonceError):  # the same token again: refused, fast or not
        auth.authenticate_request(store, header, now=now, secure=True)
    begins.take()
    # roles are read at every call, also on the fast path
    with store.transaction() as tx:
        tx.users.set_roles("carol", ["admin"], T0)
    begins.take()
    assert call()[0].roles == ("admin",) and begins.take() == (1, 0)
    # a wrong password never takes the write lock
    with pytest.raises(BadCredentialsError):
        call("not the password at all")
    assert begins.take() == (0, 1)
    # the password changed: the old one is refused, the new one accepted (full path)
    with store.transaction() as tx:
        tx.users.set_password("carol", hash_password("a brand new passphrase"), T0)
    begins.take()
    with pytest.raises(BadCredentialsError):
        call()
    assert begins.take() == (1, 1)  # tried from the cache, undecided, then the full path
    assert call("a brand new passphrase")[0].name == "carol"
    # the user is removed: refused at once, although the password was just verified
    with store.transaction() as tx:
        tx.users.remove("carol")
    with pytest.raises(BadCredentialsError):
        call("a brand new passphrase")
