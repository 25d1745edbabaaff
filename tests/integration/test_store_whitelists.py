"""Store tests: versioned whitelists (nothing is ever overwritten)."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from soapattest.errors import (
    InvalidArgumentError,
    PolicyError,
    VersionConflictError,
    WhitelistExistsError,
    WhitelistInUseError,
    WhitelistNotFoundError,
)
from soapattest.model import EntryKind, WhitelistEntry, WhitelistRef
from soapattest.store import Store
from tests.integration.store_data import at, event_entry, ima_entry, pcr_entry, policy

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]

BASE = [pcr_entry(0, 1, "crtm"), event_entry(4, 2), ima_entry("/usr/bin/bash", 3)]


def _create(store: Store, name: str = "wl") -> None:
    with store.transaction() as tx:
        tx.whitelists.create(name, BASE, description="golden", actor="alice", now=at(0))


def test_create_and_get_round_trip(store: Store) -> None:
    with store.transaction() as tx:
        created = tx.whitelists.create(
            "wl",
            [*BASE, BASE[0]],
            description="golden",
            actor="alice",
            now=at(1),
            source_host="ref",
        )
    with store.transaction() as tx:
        got = tx.whitelists.get("wl")
    assert got == created
    assert got.version == 1
    assert got.entries == tuple(BASE)  # order kept, the repeated entry stored once
    assert (got.description, got.created_by, got.source_host) == ("golden", "alice", "ref")
    assert got.created_at == at(1)


def test_create_refuses_an_active_name_and_empty_whitelists(store: Store) -> None:
    _create(store)
    with pytest.raises(WhitelistExistsError), store.transaction() as tx:
        tx.whitelists.create("wl", [pcr_entry(1, 9)], actor="bob", now=at(1))
    with pytest.raises(PolicyError), store.transaction() as tx:
        tx.whitelists.create("other", [], actor="bob", now=at(1))
    with store.transaction() as tx:
        assert tx.whitelists.get("wl").entries == tuple(BASE)  # untouched
        assert tx.whitelists.create("other", [pcr_entry(1, 9)], actor="bob", now=at(1)).version == 1


@pytest.mark.parametrize(
    "bad",
    [
        WhitelistEntry(EntryKind.PCR, "sha256", 24, b"\x01" * 32),
        WhitelistEntry(EntryKind.PCR, "sha256", -1, b"\x01" * 32),
        WhitelistEntry(EntryKind.PCR, "", 0, b"\x01" * 32),
        WhitelistEntry(EntryKind.PCR, "sha256", 0, b""),
        WhitelistEntry(EntryKind.PCR, "sha256", 0, b"\x01", path="/x"),
        WhitelistEntry(EntryKind.IMA, "sha256", 10, b"\x01" * 32),
        WhitelistEntry("tpm", "sha256", 0, b"\x01"),  # type: ignore[arg-type]
    ],
)
def test_malformed_entries_are_refused(store: Store, bad: WhitelistEntry) -> None:
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.whitelists.create("wl", [pcr_entry(0, 1), bad], actor="a", now=at(0))
    with store.transaction() as tx:
        assert tx.whitelists.list() == []
        tx.whitelists.create("wl", [pcr_entry(0, 1)], actor="a", now=at(0))  # twin


def test_add_entries_writes_a_new_version_and_keeps_the_old(store: Store) -> None:
    _create(store)
    extra = [pcr_entry(7, 7), replace(BASE[0], label="other label")]  # the second is a duplicate
    with store.transaction() as tx:
        v2 = tx.whitelists.add_entries("wl", extra, actor="bob", now=at(5))
    assert v2.version == 2
    assert v2.entries == (*BASE, pcr_entry(7, 7))
    assert (v2.created_by, v2.created_at, v2.description) == ("bob", at(5), "golden")
    with store.transaction() as tx:
        assert tx.whitelists.versions("wl") == [1, 2]
        assert tx.whitelists.get("wl", 1).entries == tuple(BASE)
        assert tx.whitelists.get("wl", 1).created_by == "alice"
        assert tx.whitelists.get("wl") == v2
        assert tx.whitelists.get("wl", 2) == v2


def test_adding_only_known_entries_writes_no_version(store: Store) -> None:
    _create(store)
    with store.transaction() as tx:
        same = tx.whitelists.add_entries("wl", BASE[:2], actor="bob", now=at(5))
        assert same.version == 1
        assert tx.whitelists.versions("wl") == [1]
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.whitelists.add_entries("wl", [], actor="bob", now=at(5))


def test_expected_version_guards_against_lost_updates(store: Store) -> None:
    _create(store)
    with store.transaction() as tx:
        tx.whitelists.add_entries("wl", [pcr_entry(1, 1)], actor="a", now=at(1), expected_version=1)
    with pytest.raises(VersionConflictError) as info, store.transaction() as tx:
        tx.whitelists.add_entries("wl", [pcr_entry(2, 2)], actor="b", now=at(2), expected_version=1)
    assert (info.value.expected, info.value.actual, info.value.name) == (1, 2, "wl")
    with pytest.raises(VersionConflictError), store.transaction() as tx:
        tx.whitelists.remove_entries("wl", [BASE[0]], actor="b", now=at(2), expected_version=1)
    with store.transaction() as tx:
        assert tx.whitelists.versions("wl") == [1, 2]
        v3 = tx.whitelists.add_entries(
            "wl", [pcr_entry(2, 2)], actor="b", now=at(3), expected_version=2
        )
        assert v3.version == 3


def test_remove_entries(store: Store) -> None:
    _create(store)
    with store.transaction() as tx:
        # matched by key: the label does not matter
        v2 = tx.whitelists.remove_entries("wl", [replace(BASE[0], label="x")], actor="c", now=at(2))
    assert v2.version == 2
    assert v2.entries == tuple(BASE[1:])
    with store.transaction() as tx:
        assert tx.whitelists.get("wl", 1).entries == tuple(BASE)


def test_removing_a_missing_entry_is_refused_and_writes_nothing(store: Store) -> None:
    _create(store)
    with pytest.raises(InvalidArgumentError) as info, store.transaction() as tx:
        tx.whitelists.remove_entries("wl", [BASE[1], pcr_entry(9, 9)], actor="c", now=at(2))
    assert info.value.argument == "entries"
    with pytest.raises(PolicyError), store.transaction() as tx:
        tx.whitelists.remove_entries("wl", BASE, actor="c", now=at(2))
    with store.transaction() as tx:
        assert tx.whitelists.versions("wl") == [1]
        assert tx.whitelists.get("wl").entries == tuple(BASE)


def test_unknown_whitelists_and_versions(store: Store) -> None:
    with store.transaction() as tx:
        for call in (
            lambda: tx.whitelists.get("nope"),
            lambda: tx.whitelists.versions("nope"),
            lambda: tx.whitelists.add_entries("nope", [pcr_entry(0, 1)], actor="a", now=at(0)),
            lambda: tx.whitelists.remove_entries("nope", [pcr_entry(0, 1)], actor="a", now=at(0)),
            lambda: tx.whitelists.delete("nope", now=at(0)),
        ):
            with pytest.raises(WhitelistNotFoundError) as info:
                call()
            assert info.value.code == "Client.WhitelistNotFound"
    _create(store, "nope")
    with store.transaction() as tx:
        with pytest.raises(WhitelistNotFoundError) as info:
            tx.whitelists.get("nope", 2)
        assert info.value.version == 2
        assert tx.whitelists.get("nope", 1).version == 1


def test_list_returns_the_latest_version_of_each(store: Store) -> None:
    _create(store, "b")
    _create(store, "a")
    _create(store, "gone")
    with store.transaction() as tx:
        tx.whitelists.add_entries("b", [pcr_entry(3, 3)], actor="x", now=at(1))
        tx.whitelists.delete("gone", now=at(2))
        listed = tx.whitelists.list()
        assert [(w.name, w.version) for w in listed] == [("a", 1), ("b", 2)]
        assert listed[1] == tx.whitelists.get("b")


def test_delete_is_soft_and_refused_while_a_policy_uses_it(store: Store) -> None:
    _create(store)
    _create(store, "spare")
    with store.transaction() as tx:
        tx.policies.create(policy("p", WhitelistRef("wl", 1)), actor="a", now=at(1))
    with pytest.raises(WhitelistInUseError) as info, store.transaction() as tx:
        tx.whitelists.delete("wl", now=at(2))
    assert info.value.used_by == ("policy:p",)
    with store.transaction() as tx:
        # only the latest policy version counts: move the policy to another whitelist
        tx.policies.update(policy("p", WhitelistRef("spare")), actor="a", now=at(3))
        tx.whitelists.delete("wl", now=at(4))
    with store.transaction() as tx:
        with pytest.raises(WhitelistNotFoundError):
            tx.whitelists.get("wl")
        again = tx.whitelists.create("wl", [pcr_entry(5, 5)], actor="a", now=at(5))
        assert again.version == 1
        assert tx.whitelists.versions("wl") == [1]


def test_concurrent_additions_are_serialised_not_lost(store: Store) -> None:
    _create(store)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def add(pcr: int) -> None:
        try:
            with store.transaction() as tx:
                barrier.wait()
                tx.whitelists.add_entries("wl", [pcr_entry(pcr, pcr)], actor="t", now=at(pcr))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(p,)) for p in (11, 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.transaction() as tx:
        assert tx.whitelists.versions("wl") == [1, 2, 3]
        assert set(tx.whitelists.get("wl").entries) == {*BASE, pcr_entry(11, 11), pcr_entry(12, 12)}


def test_entry_kinds_given_as_strings_are_normalised(store: Store) -> None:
    loose = WhitelistEntry("ima", "sha256", 10, b"\x05" * 32, path="/x")  # type: ignore[arg-type]
    with store.transaction() as tx:
        created = tx.whitelists.create("wl", [loose], actor="a", now=at(0))
        assert created.entries[0].kind is EntryKind.IMA
        assert tx.whitelists.add_entries("wl", [loose], actor="a", now=at(1)).version == 1
        assert tx.whitelists.get("wl").entries == (ima_entry("/x", 5),)
