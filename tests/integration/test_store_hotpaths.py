"""Store tests: the batch and Core paths of the attestation hot path (SQLite and PostgreSQL).

``issue_many``/``issue_if_new``/``usable`` (nonces), ``add_many`` (reports),
``record_many`` (audit), the quote state and effective policy from one query,
version ids, and the per-connection ``query_only`` bookkeeping of SQLite.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import replace

import pytest
from sqlalchemy import insert

from soapattest.errors import (
    DatabaseError,
    InvalidArgumentError,
    PolicyNotFoundError,
    UnknownHostError,
    WhitelistNotFoundError,
)
from soapattest.model import QuoteState, TrustStatus, WhitelistRef
from soapattest.store import Store
from soapattest.store.orm import EvidenceRow
from tests.integration.store_data import at, host, pcr_entry, policy, report

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def _hosts(store: Store, *names: str) -> None:
    with store.transaction() as tx:
        for name in names:
            tx.hosts.add(host(name), at(0))


# ---------------------------------------------------------------------- nonces


def test_issue_many_then_consume_each_once(store: Store) -> None:
    pairs = [("a", os.urandom(32)), ("b", os.urandom(32)), ("c", os.urandom(32))]
    with store.transaction() as tx:
        tx.nonces.issue_many(pairs, "attest", now=at(0), expires_at=at(60))
    with store.transaction() as tx:
        assert tx.nonces.consume_many(pairs, "attest", now=at(1)) == [True, True, True]
        assert tx.nonces.consume_many(pairs[:1], "attest", now=at(1)) == [False]  # replay
        assert tx.nonces.consume("b", pairs[0][1], "attest", now=at(1)) is False  # foreign


def test_issue_many_refuses_a_duplicate_and_keeps_nothing(store: Store) -> None:
    value = os.urandom(32)
    with store.transaction() as tx:
        tx.nonces.issue("a", value, "attest", now=at(0), expires_at=at(60))
    fresh = os.urandom(32)
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.nonces.issue_many([("b", fresh), ("a", value)], "attest", now=at(0), expires_at=at(60))
    with store.transaction() as tx:
        assert tx.nonces.consume("b", fresh, "attest", now=at(1)) is False  # rolled back
        tx.nonces.issue_many([("b", fresh)], "attest", now=at(0), expires_at=at(60))  # twin
        assert tx.nonces.consume("b", fresh, "attest", now=at(1)) is True


def test_issue_if_new_reports_duplicates_and_keeps_the_transaction_usable(store: Store) -> None:
    value = os.urandom(32)
    with store.transaction() as tx:
        assert tx.nonces.issue_if_new("h", value, "p", now=at(0), expires_at=at(60)) is True
        assert tx.nonces.issue_if_new("h", value, "p", now=at(0), expires_at=at(60)) is False
        # the transaction goes on (PostgreSQL would abort it after a failed INSERT)
        assert tx.nonces.issue_if_new("h", value, "q", now=at(0), expires_at=at(60)) is True
    with store.transaction() as tx:
        assert tx.nonces.consume("h", value, "p", now=at(1)) is True
        assert tx.nonces.consume("h", value, "q", now=at(1)) is True
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.nonces.issue_if_new("h", value, "p", now=at(60), expires_at=at(60))


def test_concurrent_issue_if_new_has_one_winner(store: Store) -> None:
    value = os.urandom(32)
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        with store.transaction() as tx:
            ok = tx.nonces.issue_if_new("h", value, "p", now=at(0), expires_at=at(60))
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]


def test_usable_tells_without_consuming(store: Store) -> None:
    value = os.urandom(32)
    with store.transaction() as tx:
        tx.nonces.issue("h", value, "p", now=at(0), expires_at=at(60))
    with store.transaction(readonly=True) as tx:
        assert tx.nonces.usable("h", value, "p", now=at(1)) is True
        assert tx.nonces.usable("h", value, "p", now=at(1)) is True  # still: nothing consumed
        assert tx.nonces.usable("other", value, "p", now=at(1)) is False
        assert tx.nonces.usable("h", value, "p", now=at(60)) is False  # expired
        assert tx.nonces.usable("h", b"", "p", now=at(1)) is False
    with store.transaction() as tx:
        assert tx.nonces.consume("h", value, "p", now=at(1)) is True
    with store.transaction(readonly=True) as tx:
        assert tx.nonces.usable("h", value, "p", now=at(1)) is False  # used


# ---------------------------------------------------------------------- reports, audit


def test_add_many_stores_in_order_like_add(store: Store) -> None:
    _hosts(store, "a", "b")
    given = [
        report("b", at(3), TrustStatus.UNTRUSTED),
        report("a", at(2)),
        report("b", at(4), TrustStatus.UNKNOWN),
    ]
    with store.transaction() as tx:
        stored = tx.reports.add_many(given)
        single = tx.reports.add(report("a", at(5)))
    assert [r.host for r in stored] == ["b", "a", "b"]
    ids = [r.report_id for r in stored]
    assert ids == sorted(ids) and len(set(ids)) == 3 and single.report_id > ids[-1]
    assert stored == [replace(g, report_id=s.report_id) for g, s in zip(given, stored, strict=True)]
    with store.transaction(readonly=True) as tx:
        assert [tx.reports.get(i) for i in ids] == stored
        assert tx.reports.latest("b") == stored[2]
        assert tx.reports.add_many([]) == []


def test_add_many_with_an_unknown_host_stores_nothing(store: Store) -> None:
    _hosts(store, "a")
    with pytest.raises(UnknownHostError) as info, store.transaction() as tx:
        tx.reports.add_many([report("a", at(1)), report("ghost", at(1))])
    assert info.value.name == "ghost"
    with store.transaction(readonly=True) as tx:
        assert tx.reports.list()[1] == 0
    with store.transaction() as tx:  # twin: the known host alone is stored
        assert len(tx.reports.add_many([report("a", at(1))])) == 1


def test_record_many_appends_like_record(store: Store) -> None:
    rows = [
        {"actor": "u", "action": "trust.decision", "target_type": "host", "target": f"h{i}",
         "outcome": "TRUSTED", "details": {"report_id": i}, "at": at(i)}
        for i in range(3)
    ]
    with store.transaction() as tx:
        assert tx.audit.record_many(rows) == 3
        one = tx.audit.record(**{**rows[0], "target": "solo", "at": at(9)})
    with store.transaction(readonly=True) as tx:
        records, total = tx.audit.list()
    assert total == 4 and records[0] == one
    assert [(r.target, r.details) for r in records[1:]] == [
        ("h2", {"report_id": 2}), ("h1", {"report_id": 1}), ("h0", {"report_id": 0})
    ]
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.audit.record_many([rows[0], {**rows[1], "details": {"x": b"bytes"}}])
    with store.transaction(readonly=True) as tx:
        assert tx.audit.list()[1] == 4  # the valid first row was not kept either


# ---------------------------------------------------------------------- hosts, versions


def test_record_quote_state_is_seen_by_later_reads_in_the_transaction(store: Store) -> None:
    _hosts(store, "h")
    state = QuoteState(clock=2**64 - 1, reset_count=3, restart_count=4,
                       firmware_version=2**63 + 1, safe=True)
    with store.transaction() as tx:
        assert tx.hosts.get("h").last_quote is None  # loaded before the update
        tx.hosts.record_quote_state("h", state)
        assert tx.hosts.get("h").last_quote == state
    with store.transaction(readonly=True) as tx:
        assert tx.hosts.get_with_policy("h")[0].last_quote == state
    with pytest.raises(UnknownHostError), store.transaction() as tx:
        tx.hosts.record_quote_state("ghost", state)


def test_get_with_policy_own_pool_or_none(store: Store) -> None:
    with store.transaction() as tx:
        tx.whitelists.create("wl", [pcr_entry(0, 1)], actor="a", now=at(0))
        for name in ("own", "pooled"):
            tx.policies.create(policy(name, WhitelistRef("wl")), actor="a", now=at(0))
        tx.hosts.add(host("h-own", pool="rack", policy="own"), at(0))
        tx.hosts.add(host("h-pool", pool="rack"), at(0))
        tx.hosts.add(host("h-none", pool="bare"), at(0))
        tx.hosts.add(host("h-nopool"), at(0))
        tx.pools.assign_policy("rack", "pooled", at(0))
    with store.transaction(readonly=True) as tx:
        got = {n: tx.hosts.get_with_policy(n) for n in ("h-own", "h-pool", "h-none", "h-nopool")}
        assert {n: p for n, (_, p) in got.items()} == {
            "h-own": "own", "h-pool": "pooled", "h-none": None, "h-nopool": None
        }
        assert all(h == tx.hosts.get(n) for n, (h, _) in got.items())
    with store.transaction() as tx:
        tx.hosts.delete("h-own", at(1))
    with pytest.raises(UnknownHostError), store.transaction(readonly=True) as tx:
        tx.hosts.get_with_policy("h-own")


def test_version_ids_follow_the_latest_and_refuse_unknown_ones(store: Store) -> None:
    with store.transaction() as tx:
        tx.whitelists.create("wl", [pcr_entry(0, 1)], actor="a", now=at(0))
        tx.policies.create(policy("p", WhitelistRef("wl")), actor="a", now=at(0))
        wl1, p1 = tx.whitelists.version_id("wl"), tx.policies.version_id("p")
        tx.whitelists.add_entries("wl", [pcr_entry(1, 1)], actor="a", now=at(1))
        assert tx.whitelists.version_id("wl") != wl1
        assert tx.whitelists.version_id("wl", 1) == wl1
        assert tx.policies.version_id("p", 1) == p1 == tx.policies.version_id("p")
    with pytest.raises(WhitelistNotFoundError) as wl_info, store.transaction() as tx:
        tx.whitelists.version_id("wl", 3)
    assert wl_info.value.version == 3
    with pytest.raises(WhitelistNotFoundError), store.transaction() as tx:
        tx.whitelists.version_id("nope")
    with pytest.raises(PolicyNotFoundError) as p_info, store.transaction() as tx:
        tx.policies.version_id("p", 2)
    assert p_info.value.version == 2
    with pytest.raises(PolicyNotFoundError), store.transaction() as tx:
        tx.policies.version_id("nope")


# ---------------------------------------------------------------------- read-only mode


def test_one_connection_switching_modes_stays_read_only_when_asked(store: Store) -> None:
    """With a single pooled connection every transaction reuses it: the remembered
    ``query_only`` state must follow each switch between read-only and writing."""
    single = Store(store.engine.url.render_as_string(hide_password=False), pool_size=1,
                   max_overflow=0)
    try:
        for i in range(3):
            with single.transaction() as tx:
                tx.hosts.add(host(f"w{i}"), at(0))
            with pytest.raises(DatabaseError), single.transaction(readonly=True) as tx:
                tx.hosts.add(host(f"r{i}"), at(0))
            with single.transaction(readonly=True) as tx:
                assert tx.hosts.names() == [f"w{j}" for j in range(i + 1)]
            with pytest.raises(DatabaseError), single.transaction(readonly=True) as tx:
                tx.hosts.add(host(f"r{i}"), at(0))
    finally:
        single.close()


def test_evidence_get_many_returns_only_intact_stored_blobs(store: Store) -> None:
    good, other = b"event log one" * 100, b"event log two" * 100
    with store.transaction() as tx:
        d_good = tx.evidence.put(good, "eventlog", now=at(0))
    # a row whose bytes do not hash to its key (a damaged or tampered database)
    d_bad = hashlib.sha256(b"what the key claims").digest()
    with store.engine.begin() as conn:
        conn.execute(insert(EvidenceRow).values(
            sha256=d_bad, kind="eventlog", size=len(other), data=other, created_at=at(0)))
    missing = hashlib.sha256(b"never stored").digest()
    with store.transaction(readonly=True) as tx:
        found = tx.evidence.get_many([d_good, d_bad, missing, d_good])
        assert tx.evidence.get(d_bad) == other  # get() returns what is there...
    assert found == {d_good: good}  # ...get_many() only blobs that match their digest
    with store.transaction(readonly=True) as tx:
        assert tx.evidence.get_many([]) == {}
