"""Store tests: evidence blobs are stored once by SHA-256 and read back by digest."""

from __future__ import annotations

import hashlib

import pytest

from soapattest.errors import InvalidArgumentError
from soapattest.store import Store
from tests.integration.store_data import at

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def test_put_is_content_addressed_and_idempotent(store: Store) -> None:
    data = b"\x00" * 100 + b"event log"
    with store.transaction() as tx:
        first = tx.evidence.put(data, "eventlog", now=at(0))
    with store.transaction() as tx:
        again = tx.evidence.put(data, "eventlog", now=at(5))
    assert first == again == hashlib.sha256(data).digest()
    with store.transaction(readonly=True) as tx:
        assert tx.evidence.get(first) == data
        assert tx.evidence.get(hashlib.sha256(b"other").digest()) is None


def test_empty_evidence_is_refused(store: Store) -> None:
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.evidence.put(b"", "eventlog", now=at(0))
    with store.transaction() as tx:  # twin: non-empty evidence is accepted
        assert tx.evidence.put(b"x", "eventlog", now=at(0))


def test_two_transactions_storing_the_same_bytes_both_commit(store: Store) -> None:
    import threading
    import time

    data = b"the same event log"
    errors: list[BaseException] = []
    stored = threading.Barrier(2)

    def first() -> None:
        try:
            with store.transaction() as tx:
                tx.evidence.put(data, "eventlog", now=at(0))
                stored.wait(10)
                time.sleep(0.3)  # the other transaction now waits on our row
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    def second() -> None:
        try:
            stored.wait(10)
            with store.transaction() as tx:
                tx.evidence.put(data, "eventlog", now=at(1))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with store.transaction(readonly=True) as tx:
        assert tx.evidence.get(hashlib.sha256(data).digest()) == data
