"""Store tests: transactions are all-or-nothing; read-only transactions do not write."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select, text

from soapattest.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    InvalidArgumentError,
    SoapAttestError,
)
from soapattest.store import Store
from soapattest.store.orm import Base
from tests.integration.store_data import at, host, pcr_entry, policy, report

if TYPE_CHECKING:
    from tests.integration.store_support import Backend

pytest_plugins = ["tests.pg_fixture", "tests.integration.store_support"]


def _counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as c:
        return {
            t.name: int(c.execute(select(func.count()).select_from(t)).scalar_one())
            for t in Base.metadata.sorted_tables
        }


def _write_everything(store: Store, *, fail: bool) -> None:
    with store.transaction() as tx:
        tx.whitelists.create("wl", [pcr_entry(0, 1)], actor="a", now=at(0))
        tx.whitelists.add_entries("wl", [pcr_entry(1, 1)], actor="a", now=at(1))
        tx.policies.create(policy("p"), actor="a", now=at(1))
        tx.hosts.add(host("h", pool="rack", policy="p", ident=1), at(1))
        tx.hosts.set_identity("h", host("x", ident=2).identity, at(2))  # type: ignore[arg-type]
        tx.pools.assign_policy("rack", "p", at(2))
        tx.reports.add(report("h", at(3)))
        tx.nonces.issue("h", b"n" * 32, "quote", now=at(3), expires_at=at(60))
        tx.audit.record(actor="a", action="x", target_type="t", target="h", outcome="ok", at=at(3))
        tx.users.add("u", "hash", ("admin",), at(3))
        tx.evidence.put(b"an event log", "eventlog", now=at(3))
        if fail:
            raise RuntimeError("something after the writes failed")


def test_an_exception_rolls_back_every_write(store: Store) -> None:
    with pytest.raises(RuntimeError):
        _write_everything(store, fail=True)
    assert set(_counts(store).values()) == {0}
    _write_everything(store, fail=False)  # twin: the same writes commit without the exception
    assert 0 not in _counts(store).values()


def test_a_store_error_after_writes_rolls_them_back(store: Store) -> None:
    with store.transaction() as tx:
        tx.whitelists.create("wl", [pcr_entry(0, 1), pcr_entry(1, 1)], actor="a", now=at(0))
    before = _counts(store)
    with pytest.raises(InvalidArgumentError), store.transaction() as tx:
        tx.whitelists.add_entries("wl", [pcr_entry(2, 2)], actor="a", now=at(1))
        tx.whitelists.remove_entries("wl", [pcr_entry(9, 9)], actor="a", now=at(2))
    assert _counts(store) == before
    with store.transaction() as tx:
        assert tx.whitelists.versions("wl") == [1]


def _refuse_label(store: Store, label: str) -> None:
    """Install a test-only trigger that makes inserting an entry with ``label`` fail."""
    with store.engine.begin() as c:
        if store.dialect == "sqlite":
            c.execute(
                text(
                    "CREATE TRIGGER test_refuse BEFORE INSERT ON whitelist_entries "
                    f"WHEN NEW.label = '{label}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            c.execute(
                text(
                    "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.label = '{label}' THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            c.execute(
                text(
                    "CREATE TRIGGER test_refuse BEFORE INSERT ON whitelist_entries "
                    "FOR EACH ROW EXECUTE FUNCTION test_refuse()"
                )
            )


def test_a_database_failure_on_the_last_entry_leaves_no_partial_version(backend: Backend) -> None:
    store = Store(backend.new_url(migrated=True))  # its own database: a trigger is added
    try:
        with store.transaction() as tx:
            v1 = tx.whitelists.create("wl", [pcr_entry(0, 1)], actor="a", now=at(0))
        _refuse_label(store, "boom")
        before = _counts(store)
        entries = [pcr_entry(1, 1), pcr_entry(2, 2), pcr_entry(3, 3, label="boom")]
        with pytest.raises(DatabaseError) as info, store.transaction() as tx:
            tx.whitelists.add_entries("wl", entries, actor="a", now=at(1))
        assert "refused" in str(info.value)
        assert _counts(store) == before  # no version row, no orphan entry rows
        with store.transaction() as tx:
            assert tx.whitelists.get("wl") == v1
            # twin: the same change without the refused entry goes through
            v2 = tx.whitelists.add_entries("wl", entries[:2], actor="a", now=at(2))
        assert v2.version == 2
        assert _counts(store)["whitelist_entries"] == before["whitelist_entries"] + 3
    finally:
        store.close()


def test_readonly_transactions_read_but_do_not_write(store: Store) -> None:
    with store.transaction() as tx:
        tx.hosts.add(host("h"), at(0))
    with pytest.raises(DatabaseError) as info, store.transaction(readonly=True) as tx:
        tx.hosts.add(host("h2"), at(1))
    assert not isinstance(info.value, DatabaseUnavailableError)  # a bug, not an outage
    with store.transaction(readonly=True) as tx:
        assert tx.hosts.names() == ["h"]


def test_database_errors_never_leak_sqlalchemy_types(store: Store) -> None:
    with pytest.raises(SoapAttestError) as info, store.transaction(readonly=True) as tx:
        tx.audit.record(actor="a", action="x", target_type="t", target="h", outcome="ok", at=at(0))
    assert type(info.value).__module__ == "soapattest.errors"
    assert info.value.code.startswith("Server.Database")
