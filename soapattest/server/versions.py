"""A per-process cache of whitelist and policy versions.

Versions are immutable once written, and each has a database id that is never
reused (not even by a deleted and re-created name), so a version loaded once
can be served from memory for as long as the process lives. Resolving a name
(and LATEST) still asks the database every time: only the version's content is
cached, never which version is current.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TypeVar

from soapattest.model import Policy, Whitelist
from soapattest.store import Tx

T = TypeVar("T")
CAPACITY = 512


class VersionCache:
    """Bounded LRU of (kind, version id) -> Whitelist / Policy; thread-safe."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._items: OrderedDict[tuple[str, int], object] = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity

    def _get(self, key: tuple[str, int]) -> object | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def _put(self, key: tuple[str, int], item: object) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def whitelist(self, tx: Tx, name: str, version: int | None) -> Whitelist:
        """Version ``version`` (None: the latest now) of whitelist ``name``."""
        key = ("whitelist", tx.whitelists.version_id(name, version))
        cached = self._get(key)
        if isinstance(cached, Whitelist):
            return cached
        wl = tx.whitelists.get(name, version)
        self._put(key, wl)
        return wl

    def policy(self, tx: Tx, name: str, version: int | None = None) -> Policy:
        """Version ``version`` (None: the latest now) of policy ``name``."""
        key = ("policy", tx.policies.version_id(name, version))
        cached = self._get(key)
        if isinstance(cached, Policy):
            return cached
        policy = tx.policies.get(name, version)
        self._put(key, policy)
        return policy
