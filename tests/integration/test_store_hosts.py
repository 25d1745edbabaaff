"""Store tests: hosts (registration, soft delete, identity history, quote state) and pools."""

from __future__ import annotations

import threading

import pytest

from soapattest.errors import (
    HostExistsError,
    InvalidArgumentError,
    PolicyNotFoundError,
    UnknownHostError,
)
from soapattest.model import QuoteState
from soapattest.store import Store
from tests.integration.store_data import at, host, identity, pcr_entry, policy, report

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def _with_policy(store: Store, name: str = "p") -> None:
    with store.transaction() as tx:
        if tx.whitelists.list() == []:
            tx.whitelists.create("wl", [pcr_entry(0, 1)], actor="admin", now=at(0))
        tx.policies.create(policy(name), actor="admin", now=at(0))


def test_add_and_get_round_trip(store: Store) -> None:
    given = host("h1", pool="rack1", ident=1)
    with store.transaction() as tx:
        added = tx.hosts.add(given, at(1))
    with store.transaction() as tx:
        got = tx.hosts.get("h1")
    assert got == added
    assert got.name == given.name
    assert got.agent_url == given.agent_url
    assert got.pool == "rack1"
    assert got.policy == ""
    assert got.labels == {"rack": "r1", "zone": "a"}
    assert got.description == given.description
    assert got.identity == identity(1)
    assert got.last_quote is None
    assert got.created_at == at(1)


def test_add_refuses_an_active_name(store: Store) -> None:
    with store.transaction() as tx:
        tx.hosts.add(host("h1"), at(0))
    with pytest.raises(HostExistsError) as info, store.transaction() as tx:
        tx.hosts.add(host("h1", pool="other"), at(1))
    assert info.value.name == "h1"
    assert info.value.code == "Client.AlreadyExists"
    with store.transaction() as tx:
        assert tx.hosts.get("h1").pool == ""  # not overwritten
        tx.hosts.add(host("h2"), at(1))  # positive twin: another name is fine
        assert tx.hosts.names() == ["h1", "h2"]


def test_concurrent_registrations_of_one_name_one_wins(store: Store) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def register(n: int) -> None:
        barrier.wait()
        try:
            with store.transaction() as tx:
                tx.hosts.add(host("race", pool=f"p{n}"), at(n))
            outcomes.append("ok")
        except HostExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=register, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["exists", "exists", "exists", "ok"]
    with store.transaction() as tx:
        assert tx.hosts.list()[1] == 1


def test_get_unknown_host(store: Store) -> None:
    with store.transaction() as tx:
        with pytest.raises(UnknownHostError) as info:
            tx.hosts.get("nope")
        assert info.value.code == "Client.UnknownHost"
        assert info.value.name == "nope"
    with store.transaction() as tx:
        assert tx.hosts.find("nope") is None
        tx.hosts.add(host("nope"), at(0))
        assert tx.hosts.get("nope").name == "nope"
        assert tx.hosts.find("nope") is not None


def test_list_pages_and_filters_by_pool(store: Store) -> None:
    with store.transaction() as tx:
        for i in range(7):
            tx.hosts.add(host(f"h{i}", pool="a" if i % 2 else "b"), at(i))
        tx.hosts.add(host("loner"), at(9))
    with store.transaction(readonly=True) as tx:
        page, total = tx.hosts.list(offset=2, limit=3)
        assert total == 8
        assert [h.name for h in page] == ["h2", "h3", "h4"]
        page, total = tx.hosts.list(pool="a")
        assert (total, [h.name for h in page]) == (3, ["h1", "h3", "h5"])
        page, total = tx.hosts.list(pool="")
        assert (total, [h.name for h in page]) == (1, ["loner"])
        assert tx.hosts.names(pool="b") == ["h0", "h2", "h4", "h6"]
        assert tx.hosts.list(pool="nowhere") == ([], 0)
        with pytest.raises(InvalidArgumentError):
            tx.hosts.list(limit=-1)
        with pytest.raises(InvalidArgumentError):
            tx.hosts.list(offset=-1)


def test_update_changes_only_given_fields(store: Store) -> None:
    _with_policy(store)
    with store.transaction() as tx:
        tx.hosts.add(host("h", pool="a", ident=1), at(0))
        updated = tx.hosts.update("h", agent_url="http://127.0.0.1:10/x", policy="p", now=at(5))
    assert updated.agent_url == "http://127.0.0.1:10/x"
    assert updated.policy == "p"
    assert updated.pool == "a"
    assert updated.labels == {"rack": "r1", "zone": "a"}
    assert updated.identity == identity(1)  # never changed by update
    with store.transaction() as tx:
        again = tx.hosts.update(
            "h", pool="", policy="", labels={"k": "v"}, description="d", now=at(6)
        )
    assert (again.pool, again.policy, again.labels, again.description) == ("", "", {"k": "v"}, "d")
    with store.transaction() as tx:
        assert tx.hosts.get("h") == again


def test_update_refuses_unknown_policy_and_host(store: Store) -> None:
    with store.transaction() as tx:
        tx.hosts.add(host("h"), at(0))
    with pytest.raises(PolicyNotFoundError), store.transaction() as tx:
        tx.hosts.update("h", policy="missing", now=at(1))
    with pytest.raises(UnknownHostError), store.transaction() as tx:
        tx.hosts.update("ghost", description="x", now=at(1))
    _with_policy(store, "missing")
    with store.transaction() as tx:
        assert tx.hosts.update("h", policy="missing", now=at(2)).policy == "missing"


def test_add_refuses_unknown_policy(store: Store) -> None:
    with pytest.raises(PolicyNotFoundError), store.transaction() as tx:
        tx.hosts.add(host("h", policy="p"), at(0))
    _with_policy(store)
    with store.transaction() as tx:
        assert tx.hosts.add(host("h", policy="p"), at(0)).policy == "p"


@pytest.mark.parametrize(
    ("name", "labels"),
    [("", {}), ("x" * 256, {}), ("bad\nname", {}), ("h", {"k": 1}), ("h", {"": "v"})],
)
def test_malformed_hosts_are_refused(store: Store, name: str, labels: dict[str, object]) -> None:
    bad = host(name)
    bad = type(bad)(name=name, agent_url=bad.agent_url, labels=labels)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.hosts.add(bad, at(0))
    with store.transaction() as tx:
        assert tx.hosts.list() == ([], 0)
        tx.hosts.add(host("x" * 255), at(0))  # twin: the longest allowed name


def test_soft_delete_keeps_history_and_frees_the_name(store: Store) -> None:
    with store.transaction() as tx:
        tx.hosts.add(host("h", ident=1), at(0))
        tx.hosts.set_identity("h", identity(2), at(1))
        old = tx.reports.add(report("h", at(2)))
    with store.transaction() as tx:
        tx.hosts.delete("h", at(3))
    with store.transaction() as tx:
        with pytest.raises(UnknownHostError):
            tx.hosts.get("h")
        assert tx.hosts.names() == []
        assert tx.reports.get(old.report_id) == old  # reports stay
        assert tx.reports.latest("h") is None
    with pytest.raises(UnknownHostError), store.transaction() as tx:
        tx.hosts.delete("h", at(4))
    with store.transaction() as tx:
        again = tx.hosts.add(host("h", ident=3), at(5))  # the name is free again
        assert again.identity == identity(3)
        assert tx.hosts.identity_history("h") == []  # a new registration, its own history
        assert tx.reports.latest("h") is None  # the old registration's report does not count
        assert tx.reports.list(host="h")[0] == [old]  # but the name's history is kept
        new = tx.reports.add(report("h", at(6)))
        assert tx.reports.latest("h") == new


def test_identity_changes_only_explicitly_and_history_is_kept(store: Store) -> None:
    with store.transaction() as tx:
        tx.hosts.add(host("h"), at(0))
        assert tx.hosts.get("h").identity is None
        tx.hosts.set_identity("h", identity(1), at(1))
        assert tx.hosts.identity_history("h") == []
        tx.hosts.set_identity("h", identity(2), at(2))
        tx.hosts.set_identity("h", identity(3), at(3))
    with store.transaction() as tx:
        assert tx.hosts.get("h").identity == identity(3)
        assert tx.hosts.identity_history("h") == [identity(1), identity(2)]
    with pytest.raises(UnknownHostError), store.transaction() as tx:
        tx.hosts.set_identity("ghost", identity(1), at(4))
    with pytest.raises(UnknownHostError), store.transaction() as tx:
        tx.hosts.identity_history("ghost")


def test_identity_with_empty_keys_is_refused(store: Store) -> None:
    broken = type(identity(1))(
        ek_public=b"", ek_certificate=b"", ak_public=b"a", ak_name=b"n", activated_at=at(0)
    )
    with store.transaction() as tx:
        tx.hosts.add(host("h"), at(0))
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.hosts.set_identity("h", broken, at(1))
    with store.transaction() as tx:
        tx.hosts.set_identity("h", identity(1), at(1))  # twin; an empty EK certificate is allowed
        assert tx.hosts.get("h").identity == identity(1)


def test_quote_state_round_trips_the_uint64_range(store: Store) -> None:
    state = QuoteState(
        clock=2**64 - 1, reset_count=2**32 - 1, restart_count=0, firmware_version=2**63, safe=False
    )
    with store.transaction() as tx:
        tx.hosts.add(host("h"), at(0))
        tx.hosts.record_quote_state("h", state)
    with store.transaction() as tx:
        assert tx.hosts.get("h").last_quote == state
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.hosts.record_quote_state("h", QuoteState(-1, 0, 0, 0))
    with pytest.raises(UnknownHostError), store.transaction() as tx:
        tx.hosts.record_quote_state("ghost", state)
    with store.transaction() as tx:
        assert tx.hosts.get("h").last_quote == state


def test_effective_policy_host_before_pool(store: Store) -> None:
    _with_policy(store, "pool-policy")
    _with_policy(store, "own-policy")
    with store.transaction() as tx:
        tx.hosts.add(host("a", pool="p1"), at(0))
        tx.hosts.add(host("b", pool="p1", policy="own-policy"), at(0))
        tx.hosts.add(host("c"), at(0))
        assert tx.hosts.effective_policy("a") is None
        tx.pools.assign_policy("p1", "pool-policy", at(1))
        assert tx.hosts.effective_policy("a") == "pool-policy"
        assert tx.hosts.effective_policy("b") == "own-policy"
        assert tx.hosts.effective_policy("c") is None
        with pytest.raises(UnknownHostError):
            tx.hosts.effective_policy("ghost")


def test_pools_assign_list_and_unassign(store: Store) -> None:
    _with_policy(store)
    with store.transaction() as tx:
        tx.hosts.add(host("a", pool="p1"), at(0))
        tx.hosts.add(host("b", pool="p1"), at(0))
        tx.hosts.add(host("c", pool="p2"), at(0))
        tx.hosts.add(host("d"), at(0))
        assert tx.pools.list() == [("p1", None, 2), ("p2", None, 1)]
        tx.pools.assign_policy("p2", "p", at(1))
        tx.pools.assign_policy("empty", "p", at(1))
        assert tx.pools.get_policy("p2") == "p"
        assert tx.pools.get_policy("p1") is None
        assert tx.pools.list() == [("empty", "p", 0), ("p1", None, 2), ("p2", "p", 1)]
        tx.hosts.delete("c", at(2))
        tx.pools.assign_policy("empty", None, at(3))
        assert tx.pools.list() == [("p1", None, 2), ("p2", "p", 0)]
    with pytest.raises(PolicyNotFoundError), store.transaction() as tx:
        tx.pools.assign_policy("p1", "missing", at(4))
    with store.transaction() as tx:
        assert tx.pools.get_policy("p1") is None
