"""Store tests: versioned policies, assignment to hosts and pools."""

from __future__ import annotations

from dataclasses import replace

import pytest

from soapattest.errors import (
    InvalidArgumentError,
    PolicyError,
    PolicyExistsError,
    PolicyInUseError,
    PolicyNotFoundError,
    VersionConflictError,
    WhitelistNotFoundError,
)
from soapattest.model import (
    Combine,
    ImaMode,
    ImaRequirements,
    Policy,
    SecureBootRequirements,
    WhitelistRef,
)
from soapattest.store import Store
from tests.integration.store_data import at, host, pcr_entry, policy

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]

FULL = Policy(
    name="full",
    version=99,  # ignored: the store numbers versions
    combine=Combine.ANY_OF,
    whitelists=(WhitelistRef("boot", 1), WhitelistRef("ima")),
    banks=("sha256", "sha1"),
    use_event_log=False,
    secure_boot=SecureBootRequirements(
        require_enabled=False,
        dbx_must_contain=(b"\x01" * 32, b"\x02" * 32),
        allowed_authorities=(b"\xaa" * 32,),
    ),
    ima=ImaRequirements(mode=ImaMode.ALLOWLIST, bank="sha384"),
    signature_hashes=("sha384",),
    min_rsa_bits=3072,
    min_ecc_bits=384,
    description="everything set",
)


@pytest.fixture
def with_whitelists(store: Store) -> Store:
    with store.transaction() as tx:
        for name in ("boot", "ima", "wl"):
            tx.whitelists.create(name, [pcr_entry(0, 1)], actor="a", now=at(0))
    return store


def test_create_and_get_store_the_definition_faithfully(with_whitelists: Store) -> None:
    store = with_whitelists
    with store.transaction() as tx:
        created = tx.policies.create(FULL, actor="alice", now=at(1))
    expected = replace(FULL, version=1, created_at=at(1), created_by="alice")
    assert created == expected
    with store.transaction() as tx:
        assert tx.policies.get("full") == expected
        assert tx.policies.get("full", 1) == expected
        minimal = tx.policies.create(policy("min"), actor="bob", now=at(2))
    assert minimal.secure_boot is None
    assert minimal.whitelists == (WhitelistRef("wl", None),)
    assert minimal.ima == ImaRequirements()


def test_create_refuses_bad_definitions(with_whitelists: Store) -> None:
    store = with_whitelists
    cases: list[tuple[Policy, type[Exception]]] = [
        (replace(FULL, whitelists=()), PolicyError),
        (replace(FULL, banks=()), PolicyError),
        (replace(FULL, whitelists=(WhitelistRef("missing"),)), WhitelistNotFoundError),
        (replace(FULL, whitelists=(WhitelistRef("boot", 2),)), WhitelistNotFoundError),
        (
            replace(FULL, whitelists=(WhitelistRef("boot"), WhitelistRef("boot"))),
            InvalidArgumentError,
        ),
        (replace(FULL, banks=("sha256", "sha256")), InvalidArgumentError),
        (replace(FULL, name=""), InvalidArgumentError),
        (replace(FULL, min_rsa_bits=-1), InvalidArgumentError),
        (replace(FULL, combine="SOME_OF"), InvalidArgumentError),  # type: ignore[arg-type]
    ]
    for bad, error in cases:
        with pytest.raises(error), store.transaction() as tx:
            tx.policies.create(bad, actor="a", now=at(1))
    with store.transaction() as tx:
        assert tx.policies.list() == []
        tx.policies.create(FULL, actor="a", now=at(1))  # twin
        with pytest.raises(PolicyExistsError):
            tx.policies.create(FULL, actor="a", now=at(2))


def test_update_writes_a_new_version(with_whitelists: Store) -> None:
    store = with_whitelists
    with store.transaction() as tx:
        tx.policies.create(FULL, actor="alice", now=at(1))
        v2 = tx.policies.update(
            replace(FULL, banks=("sha256",), whitelists=(WhitelistRef("wl"),)),
            actor="bob",
            now=at(2),
            expected_version=1,
        )
    assert (v2.version, v2.banks, v2.created_by) == (2, ("sha256",), "bob")
    with store.transaction() as tx:
        assert tx.policies.versions("full") == [1, 2]
        assert tx.policies.get("full", 1).banks == ("sha256", "sha1")  # never overwritten
        assert tx.policies.get("full") == v2
    with pytest.raises(VersionConflictError), store.transaction() as tx:
        tx.policies.update(FULL, actor="c", now=at(3), expected_version=1)
    with pytest.raises(PolicyNotFoundError), store.transaction() as tx:
        tx.policies.update(replace(FULL, name="other"), actor="c", now=at(3))
    with pytest.raises(PolicyNotFoundError), store.transaction() as tx:
        tx.policies.get("full", 3)
    with store.transaction() as tx:
        assert tx.policies.versions("full") == [1, 2]


def test_list_returns_latest_versions(with_whitelists: Store) -> None:
    store = with_whitelists
    with store.transaction() as tx:
        tx.policies.create(policy("b"), actor="a", now=at(1))
        tx.policies.create(policy("a"), actor="a", now=at(1))
        tx.policies.update(replace(policy("b"), description="v2"), actor="a", now=at(2))
        listed = tx.policies.list()
    assert [(p.name, p.version, p.description) for p in listed] == [("a", 1, ""), ("b", 2, "v2")]


def test_delete_refused_while_assigned(with_whitelists: Store) -> None:
    store = with_whitelists
    with store.transaction() as tx:
        tx.policies.create(policy("p"), actor="a", now=at(1))
        tx.hosts.add(host("h1", policy="p"), at(1))
        tx.pools.assign_policy("rack", "p", at(1))
    with pytest.raises(PolicyInUseError) as info, store.transaction() as tx:
        tx.policies.delete("p", at(2))
    assert info.value.used_by == ("host:h1", "pool:rack")
    assert info.value.code == "Client.InUse"
    with store.transaction() as tx:
        tx.hosts.update("h1", policy="", now=at(3))
        tx.pools.assign_policy("rack", None, at(3))
        tx.policies.delete("p", at(4))
    with store.transaction() as tx:
        with pytest.raises(PolicyNotFoundError):
            tx.policies.get("p")
        with pytest.raises(PolicyNotFoundError):
            tx.policies.delete("p", at(5))
        assert tx.policies.create(policy("p"), actor="a", now=at(6)).version == 1  # re-creatable


def test_deleted_hosts_do_not_keep_a_policy_in_use(with_whitelists: Store) -> None:
    store = with_whitelists
    with store.transaction() as tx:
        tx.policies.create(policy("p"), actor="a", now=at(1))
        tx.hosts.add(host("h1", policy="p"), at(1))
        tx.hosts.delete("h1", at(2))
        tx.policies.delete("p", at(3))
        assert tx.policies.list() == []
