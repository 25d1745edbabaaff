"""Store tests: trust reports (immutable, append-only in the database itself)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc

from soapattest.errors import InvalidArgumentError, ReportNotFoundError, UnknownHostError
from soapattest.model import TrustStatus
from soapattest.store import Store
from tests.integration.store_data import at, host, report

if TYPE_CHECKING:
    from tests.pg_fixture import PgCluster

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def _hosts(store: Store, *names: str) -> None:
    with store.transaction() as tx:
        for name in names:
            tx.hosts.add(host(name), at(0))


def test_add_and_get_round_trip(store: Store) -> None:
    _hosts(store, "h")
    given = report("h", at(10), TrustStatus.UNTRUSTED)
    with store.transaction() as tx:
        stored = tx.reports.add(replace(given, report_id=12345))
    assert stored.report_id > 0
    assert stored == replace(given, report_id=stored.report_id)
    with store.transaction(readonly=True) as tx:
        got = tx.reports.get(stored.report_id)
    assert got == stored
    assert got.clock == 2**63 + 5 and got.firmware_version == 2**64 - 1
    assert got.pcrs["sha256"][7] == b"\x07" * 32
    assert got.failures()[0].pcr == 7


def test_add_for_an_unknown_host_is_refused(store: Store) -> None:
    with pytest.raises(UnknownHostError), store.transaction() as tx:
        tx.reports.add(report("ghost", at(1)))
    _hosts(store, "ghost")
    with store.transaction() as tx:
        assert tx.reports.add(report("ghost", at(1))).report_id > 0


def test_malformed_reports_are_refused(store: Store) -> None:
    _hosts(store, "h")
    good = report("h", at(1))
    for bad in (
        replace(good, pcrs={"sha256": {24: b"\x00" * 32}}),
        replace(good, reset_count=-1),
        replace(good, status="MAYBE"),
        replace(good, policy=None),  # a policy_version without a policy
    ):
        with pytest.raises(InvalidArgumentError), store.transaction() as tx:
            tx.reports.add(bad)
    with store.transaction() as tx:
        assert tx.reports.list() == ([], 0)
        tx.reports.add(good)


def test_get_unknown_report(store: Store) -> None:
    with store.transaction() as tx:
        for report_id in (0, -1, 999_999):
            with pytest.raises(ReportNotFoundError) as info:
                tx.reports.get(report_id)
            assert info.value.report_id == report_id
            assert info.value.code == "Client.ReportNotFound"


def test_latest_is_by_creation_time_not_insertion_order(store: Store) -> None:
    _hosts(store, "h", "quiet")
    with store.transaction() as tx:
        newest = tx.reports.add(report("h", at(30)))
        tx.reports.add(report("h", at(10)))  # a late write of an older evaluation
        assert tx.reports.latest("h") == newest
        assert tx.reports.latest("quiet") is None
        assert tx.reports.latest("ghost") is None


def test_latest_many_uses_one_query(store: Store) -> None:
    names = [f"h{i:02}" for i in range(20)]
    _hosts(store, *names, "gone")
    expected = {}
    with store.transaction() as tx:
        for i, name in enumerate(names[:15]):
            tx.reports.add(report(name, at(i)))
            expected[name] = tx.reports.add(report(name, at(100 + i), TrustStatus.UNKNOWN))
        tx.reports.add(report("gone", at(1)))
        tx.hosts.delete("gone", at(2))
    selects: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        with store.transaction(readonly=True) as tx:
            latest = tx.reports.latest_many([*names, "gone", "ghost"])
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len(selects) == 1
    assert latest == expected
    with store.transaction() as tx:
        assert tx.reports.latest_many([]) == {}


def test_list_filters_pages_newest_first(store: Store) -> None:
    _hosts(store, "a", "b")
    with store.transaction() as tx:
        stored = [
            tx.reports.add(report(name, at(t), status))
            for t, name, status in [
                (1, "a", TrustStatus.TRUSTED),
                (2, "b", TrustStatus.UNTRUSTED),
                (3, "a", TrustStatus.UNTRUSTED),
                (4, "a", TrustStatus.TRUSTED),
                (5, "b", TrustStatus.TRUSTED),
            ]
        ]
    with store.transaction(readonly=True) as tx:
        everything, total = tx.reports.list()
        assert total == 5
        assert everything == stored[::-1]
        page, total = tx.reports.list(host="a", offset=1, limit=1)
        assert (page, total) == ([stored[2]], 3)
        assert tx.reports.list(status=TrustStatus.UNTRUSTED) == ([stored[2], stored[1]], 2)
        assert tx.reports.list(status="TRUSTED", host="b") == ([stored[4]], 1)
        assert tx.reports.list(since=at(2), until=at(4)) == ([stored[2], stored[1]], 2)
        with pytest.raises(InvalidArgumentError):
            tx.reports.list(status="FINE")
        with pytest.raises(InvalidArgumentError):
            tx.reports.list(limit=10_001)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE trust_reports SET status = 'TRUSTED'",
        "DELETE FROM trust_reports",
        "UPDATE audit_log SET outcome = 'success'",
        "DELETE FROM audit_log",
    ],
)
def test_reports_and_audit_are_append_only_in_the_database(store: Store, statement: str) -> None:
    _hosts(store, "h")
    with store.transaction() as tx:
        tx.reports.add(report("h", at(1), TrustStatus.UNTRUSTED))
        tx.audit.record(
            actor="a", action="x", target_type="host", target="h", outcome="failure", at=at(1)
        )
    with pytest.raises(sa_exc.IntegrityError, match="append-only"), store.engine.begin() as c:
        c.execute(text(statement))
    # twin: the same kind of statement works on an ordinary table
    with store.engine.begin() as c:
        assert c.execute(text("UPDATE hosts SET description = 'changed'")).rowcount == 1
    with store.transaction() as tx:
        assert tx.reports.list()[0][0].status is TrustStatus.UNTRUSTED
        assert tx.audit.list()[0][0].outcome == "failure"


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql(pg_cluster: PgCluster, pg_template: str) -> None:
    s = Store(pg_cluster.create_database(template=pg_template))
    try:
        for table in ("trust_reports", "audit_log"):
            with pytest.raises(sa_exc.IntegrityError), s.engine.begin() as c:
                c.execute(text(f"TRUNCATE {table}"))
        with s.engine.begin() as c:
            c.execute(text("TRUNCATE nonces"))  # twin: an ordinary table
    finally:
        s.close()
