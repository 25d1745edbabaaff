"""Store tests: the audit log and users."""

from __future__ import annotations

import pytest

from soapattest.errors import InvalidArgumentError, UserExistsError, UserNotFoundError
from soapattest.store import Store
from tests.integration.store_data import at

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def test_audit_record_and_list(store: Store) -> None:
    with store.transaction() as tx:
        records = [
            tx.audit.record(
                actor=actor,
                action=action,
                target_type="host",
                target=target,
                outcome="success",
                details={"n": n, "nested": {"ok": True, "list": [1, "two"]}},
                at=at(n),
            )
            for n, (actor, action, target) in enumerate(
                [
                    ("alice", "host.register", "h1"),
                    ("bob", "host.delete", "h1"),
                    ("alice", "whitelist.create", "wl"),
                    ("alice", "host.register", "h2"),
                ]
            )
        ]
    assert [r.record_id for r in records] == sorted({r.record_id for r in records})
    assert records[0].details == {"n": 0, "nested": {"ok": True, "list": [1, "two"]}}
    with store.transaction(readonly=True) as tx:
        assert tx.audit.list() == (records[::-1], 4)
        assert tx.audit.list(actor="alice") == ([records[3], records[2], records[0]], 3)
        assert tx.audit.list(action="host.register", target="h2") == ([records[3]], 1)
        assert tx.audit.list(target="h1", since=at(1)) == ([records[1]], 1)
        assert tx.audit.list(until=at(1)) == ([records[0]], 1)
        assert tx.audit.list(offset=1, limit=2) == ([records[2], records[1]], 4)
        assert tx.audit.list(actor="nobody") == ([], 0)


def test_audit_refuses_unserialisable_details(store: Store) -> None:
    for details in ({"raw": b"\x00"}, {1: "x"}, {"nan": float("nan")}):
        with pytest.raises(InvalidArgumentError), store.transaction() as tx:
            tx.audit.record(
                actor="a",
                action="x",
                target_type="t",
                target="y",
                outcome="ok",
                details=details,
                at=at(0),  # type: ignore[arg-type]
            )
    with store.transaction() as tx:
        assert tx.audit.list() == ([], 0)
        tx.audit.record(
            actor="a",
            action="x",
            target_type="t",
            target="y",
            outcome="ok",
            details={"raw": "00"},
            at=at(0),
        )
        assert tx.audit.list()[1] == 1


def test_audit_commits_and_rolls_back_with_the_change(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.audit.record(actor="a", action="x", target_type="t", target="y", outcome="ok", at=at(0))
        raise RuntimeError("the change failed")
    with store.transaction() as tx:
        assert tx.audit.list() == ([], 0)


def test_users(store: Store) -> None:
    with store.transaction() as tx:
        alice = tx.users.add("alice", "$scrypt$hash-a", ("admin", "operator", "admin"), at(0))
        tx.users.add("bob", "$scrypt$hash-b", (), at(1))
    assert alice.roles == ("admin", "operator")
    assert "hash-a" not in repr(alice)
    with store.transaction() as tx:
        assert tx.users.get("alice") == alice
        assert [u.name for u in tx.users.list()] == ["alice", "bob"]
        changed = tx.users.set_password("alice", "$scrypt$hash-new", at(5))
        assert (changed.password_hash, changed.updated_at, changed.created_at) == (
            "$scrypt$hash-new",
            at(5),
            at(0),
        )
        assert tx.users.set_roles("bob", ["reader"], at(6)).roles == ("reader",)
        tx.users.remove("bob")
    with store.transaction() as tx:
        assert [u.name for u in tx.users.list()] == ["alice"]
        assert tx.users.get("alice").password_hash == "$scrypt$hash-new"
        assert tx.users.find("bob") is None


def test_user_errors(store: Store) -> None:
    with store.transaction() as tx:
        tx.users.add("alice", "h", ("admin",), at(0))
    with pytest.raises(UserExistsError), store.transaction() as tx:
        tx.users.add("alice", "other", (), at(1))
    with store.transaction() as tx:
        for call in (
            lambda: tx.users.get("bob"),
            lambda: tx.users.remove("bob"),
            lambda: tx.users.set_password("bob", "h", at(1)),
            lambda: tx.users.set_roles("bob", (), at(1)),
        ):
            with pytest.raises(UserNotFoundError) as info:
                call()
            assert info.value.code == "Client.UserNotFound"
        with pytest.raises(InvalidArgumentError):
            tx.users.add("carol", "", (), at(1))
        with pytest.raises(InvalidArgumentError):
            tx.users.add("carol", "h", "admin", at(1))  # a string is not a sequence of roles
        assert tx.users.get("alice").password_hash == "h"  # twins
        assert tx.users.add("carol", "h", ("admin",), at(1)).name == "carol"
