"""Store tests: nonces are single-use, bound to host and purpose, and expire."""

from __future__ import annotations

import os
import threading

import pytest

from soapattest.errors import InvalidArgumentError
from soapattest.store import Store
from tests.integration.store_data import at

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def _issue(store: Store, value: bytes, *, host: str = "h", purpose: str = "quote") -> None:
    with store.transaction() as tx:
        tx.nonces.issue(host, value, purpose, now=at(0), expires_at=at(60))


def _consume(
    store: Store, value: bytes, *, host: str = "h", purpose: str = "quote", t: float = 1
) -> bool:
    with store.transaction() as tx:
        return tx.nonces.consume(host, value, purpose, now=at(t))


def test_consume_once(store: Store) -> None:
    nonce = os.urandom(32)
    _issue(store, nonce)
    assert _consume(store, nonce) is True
    assert _consume(store, nonce) is False  # replay
    assert _consume(store, nonce, t=2) is False


def test_nonce_is_bound_to_host_purpose_and_value(store: Store) -> None:
    nonce = os.urandom(32)
    _issue(store, nonce)
    assert _consume(store, nonce, host="other") is False
    assert _consume(store, nonce, purpose="activation") is False
    assert _consume(store, nonce[:-1] + bytes([nonce[-1] ^ 1])) is False
    assert _consume(store, b"") is False
    assert _consume(store, nonce) is True  # twin: the right host, purpose and value


def test_expiry_is_exclusive(store: Store) -> None:
    late, in_time = os.urandom(32), os.urandom(32)
    _issue(store, late)
    _issue(store, in_time)
    assert _consume(store, late, t=60) is False  # expires_at is not valid any more
    assert _consume(store, in_time, t=59.999) is True


def test_issue_refuses_bad_arguments(store: Store) -> None:
    nonce = os.urandom(32)
    with store.transaction() as tx:
        with pytest.raises(InvalidArgumentError):
            tx.nonces.issue("h", nonce, "quote", now=at(10), expires_at=at(10))
        with pytest.raises(InvalidArgumentError):
            tx.nonces.issue("h", b"", "quote", now=at(0), expires_at=at(10))
        with pytest.raises(InvalidArgumentError):
            tx.nonces.issue("", nonce, "quote", now=at(0), expires_at=at(10))
    _issue(store, nonce)
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.nonces.issue("h", nonce, "quote", now=at(0), expires_at=at(10))  # issued twice
    _issue(store, nonce, purpose="activation")  # twin: another purpose is another nonce
    assert _consume(store, nonce) is True
    assert _consume(store, nonce, purpose="activation") is True


def test_purge_expired(store: Store) -> None:
    short, used, long = os.urandom(32), os.urandom(32), os.urandom(32)
    with store.transaction() as tx:
        tx.nonces.issue("h", short, "quote", now=at(0), expires_at=at(10))
        tx.nonces.issue("h", used, "quote", now=at(0), expires_at=at(10))
        tx.nonces.issue("h", long, "quote", now=at(0), expires_at=at(100))
        assert tx.nonces.consume("h", used, "quote", now=at(1)) is True
    with store.transaction() as tx:
        assert tx.nonces.purge_expired(at(9)) == 0
        assert tx.nonces.purge_expired(at(10)) == 2
        assert tx.nonces.purge_expired(at(10)) == 0
    assert _consume(store, short, t=5) is False  # gone: never usable again
    assert _consume(store, long, t=50) is True


@pytest.mark.parametrize("separate_stores", [False, True], ids=["threads", "nodes"])
def test_concurrent_consumers_exactly_one_wins(store: Store, separate_stores: bool) -> None:
    """Several consumers, each on its own connection (and with ``nodes`` its own engine,
    as separate server nodes would be), race for the same nonces."""
    consumers = 4
    nonces = [os.urandom(32) for _ in range(5)]
    for nonce in nonces:
        _issue(store, nonce)
    url = store.engine.url.render_as_string(hide_password=False)
    stores = [Store(url) if separate_stores else store for _ in range(consumers)]
    barrier = threading.Barrier(consumers)
    wins: list[list[bool]] = [[] for _ in nonces]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def consume(s: Store) -> None:
        try:
            for i, nonce in enumerate(nonces):
                with s.transaction() as tx:
                    barrier.wait()
                    won = tx.nonces.consume("h", nonce, "quote", now=at(1))
                with lock:
                    wins[i].append(won)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=consume, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if separate_stores:
        for s in stores:
            s.close()
    assert errors == []
    assert [sorted(w) for w in wins] == [[False] * (consumers - 1) + [True]] * len(nonces)
