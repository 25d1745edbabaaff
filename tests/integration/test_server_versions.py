"""The version cache serves immutable versions, never a stale LATEST or a re-created name."""

from __future__ import annotations

from pathlib import Path

from soapattest.model import EntryKind, WhitelistEntry
from soapattest.server.versions import VersionCache
from soapattest.store import Store
from tests.integration.store_data import at


def entry(pcr: int, byte: int) -> WhitelistEntry:
    return WhitelistEntry(EntryKind.PCR, "sha256", pcr, bytes([byte]) * 32)


def test_latest_follows_new_versions_and_recreated_names(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.upgrade()
    cache = VersionCache(capacity=2)
    with store.transaction() as tx:
        tx.whitelists.create("wl", [entry(0, 1)], description="", actor="a", now=at(0))
    with store.transaction() as tx:
        v1 = cache.whitelist(tx, "wl", None)
        assert cache.whitelist(tx, "wl", None) is v1  # served from the cache
    with store.transaction() as tx:
        tx.whitelists.add_entries("wl", [entry(1, 2)], actor="a", now=at(1))
    with store.transaction() as tx:
        latest = cache.whitelist(tx, "wl", None)
        assert latest.version == 2 and len(latest.entries) == 2
        assert cache.whitelist(tx, "wl", 1) is v1  # pinned versions stay
    with store.transaction() as tx:
        tx.whitelists.delete("wl", now=at(2))
    with store.transaction() as tx:
        tx.whitelists.create("wl", [entry(7, 9)], description="", actor="a", now=at(3))
    with store.transaction() as tx:
        again = cache.whitelist(tx, "wl", 1)
        assert again.version == 1 and again.entries[0].pcr == 7  # not the deleted one
    store.close()
