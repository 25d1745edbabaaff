"""Whitelists: named, versioned; every change writes a new immutable version."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from soapattest.errors import (
    InvalidArgumentError,
    PolicyError,
    VersionConflictError,
    WhitelistExistsError,
    WhitelistInUseError,
)
from soapattest.model import Whitelist, WhitelistEntry
from soapattest.store import convert, validate
from soapattest.store.db import guarded
from soapattest.store.orm import (
    PolicyWhitelistRefRow,
    WhitelistEntryRow,
    WhitelistRow,
    WhitelistVersionRow,
)
from soapattest.store.queries import (
    active_whitelist,
    add_version,
    find_version_id,
    latest_policy_versions,
    latest_whitelist_versions,
    whitelist_version,
)


def _unique(entries: Iterable[WhitelistEntry]) -> builtins.list[WhitelistEntry]:
    """Checked entries without repetitions (same ``key()``), first occurrence kept."""
    if isinstance(entries, WhitelistEntry | str | bytes):
        raise InvalidArgumentError(
            "entries must be a sequence of WhitelistEntry", argument="entries"
        )
    out: dict[tuple[str, str, int, bytes, str], WhitelistEntry] = {}
    for item in entries:
        checked = convert.entry(item)
        out.setdefault(checked.key(), checked)
    return builtins.list(out.values())


@guarded
class WhitelistRepository:
    """``tx.whitelists``. A whitelist version is never changed once written: add/remove
    write version N+1 with the complete resulting entry set. A version always holds at
    least one entry (an empty whitelist would be an accept-nothing/accept-all trap)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def create(
        self,
        name: str,
        entries: Iterable[WhitelistEntry],
        *,
        description: str = "",
        actor: str,
        now: datetime,
        source_host: str = "",
    ) -> Whitelist:
        """Create version 1 of whitelist ``name``.

        Raises WhitelistExistsError (an active whitelist has the name),
        PolicyError (no entries), InvalidArgumentError (malformed entry/field).
        """
        now = validate.utc(now, "now")
        wl_name = validate.name(name, "name")
        unique = _unique(entries)
        if not unique:
            raise PolicyError(f"whitelist {wl_name!r} has no entries")
        fields = (
            validate.text(description, "description"),
            validate.name(actor, "actor", empty=True),
            validate.name(source_host, "source_host", empty=True),
        )
        exists = self._s.scalar(
            select(WhitelistRow.id).where(
                WhitelistRow.name == wl_name, WhitelistRow.deleted_at.is_(None)
            )
        )
        if exists is not None:
            raise WhitelistExistsError(f"a whitelist named {wl_name!r} exists", name=wl_name)
        row = WhitelistRow(name=wl_name, created_at=now, deleted_at=None)
        self._s.add(row)
        try:
            self._s.flush()
        except sa_exc.IntegrityError as exc:  # a concurrent create won the race
            raise WhitelistExistsError(
                f"a whitelist named {wl_name!r} exists", name=wl_name
            ) from exc
        return self._write(row, 1, unique, *fields, now)

    def get(self, name: str, version: int | None = None) -> Whitelist:
        """Version ``version`` of ``name`` (None: the latest). WhitelistNotFoundError."""
        wl = active_whitelist(self._s, name)
        return self._load(wl.name, whitelist_version(self._s, wl, version))

    def version_id(self, name: str, version: int | None = None) -> int:
        """The immutable id of version ``version`` of ``name`` (None: the latest): a cache
        key that a deleted and re-created whitelist of the same name never reuses.
        WhitelistNotFoundError."""
        found = find_version_id(self._s, "whitelist", name, version)
        if found is not None:
            return found
        wl = active_whitelist(self._s, name)  # raises the precise not-found error
        return whitelist_version(self._s, wl, version).id

    def versions(self, name: str) -> builtins.list[int]:
        """Every version number of ``name``, ascending. WhitelistNotFoundError."""
        wl = active_whitelist(self._s, name)
        return builtins.list(
            self._s.scalars(
                select(WhitelistVersionRow.version)
                .where(WhitelistVersionRow.whitelist_id == wl.id)
                .order_by(WhitelistVersionRow.version)
            )
        )

    def list(self) -> builtins.list[Whitelist]:
        """The latest version of every active whitelist, sorted by name (two queries)."""
        latest = self._s.execute(latest_whitelist_versions().order_by(WhitelistRow.name)).all()
        entries: dict[int, builtins.list[WhitelistEntryRow]] = {v.id: [] for v, _ in latest}
        if entries:
            for e in self._s.scalars(
                select(WhitelistEntryRow)
                .where(WhitelistEntryRow.version_id.in_(builtins.list(entries)))
                .order_by(WhitelistEntryRow.version_id, WhitelistEntryRow.position)
            ):
                entries[e.version_id].append(e)
        return [convert.whitelist_from_rows(n, v, entries[v.id]) for v, n in latest]

    def add_entries(
        self,
        name: str,
        entries: Iterable[WhitelistEntry],
        *,
        actor: str,
        now: datetime,
        expected_version: int | None = None,
        source_host: str | None = None,
    ) -> Whitelist:
        """Write a new version holding the latest entries plus ``entries``.

        Entries already present (same ``key()``) are not added twice; when every
        entry is already present, no version is written and the latest is
        returned. ``source_host`` None keeps the previous version's. Raises
        WhitelistNotFoundError, VersionConflictError (``expected_version`` is not
        the latest), InvalidArgumentError (no or malformed entries).
        """
        now = validate.utc(now, "now")
        new = _unique(entries)
        if not new:
            raise InvalidArgumentError("no entries to add", argument="entries")
        wl, latest, current = self._begin_change(name, expected_version)
        keys = {e.key() for e in current.entries}
        added = [e for e in new if e.key() not in keys]
        if not added:
            return current
        host = latest.source_host if source_host is None else source_host
        return self._write(
            wl,
            latest.version + 1,
            [*current.entries, *added],
            latest.description,
            validate.name(actor, "actor", empty=True),
            validate.name(host, "source_host", empty=True),
            now,
        )

    def remove_entries(
        self,
        name: str,
        entries: Iterable[WhitelistEntry],
        *,
        actor: str,
        now: datetime,
        expected_version: int | None = None,
    ) -> Whitelist:
        """Write a new version holding the latest entries minus ``entries`` (matched by
        ``key()``; labels do not matter).

        Raises WhitelistNotFoundError, VersionConflictError, InvalidArgumentError
        (an entry is not in the latest version, or no entries given), PolicyError
        (nothing would remain: delete the whitelist instead).
        """
        now = validate.utc(now, "now")
        gone = _unique(entries)
        if not gone:
            raise InvalidArgumentError("no entries to remove", argument="entries")
        wl, latest, current = self._begin_change(name, expected_version)
        keys = {e.key() for e in current.entries}
        missing = [e for e in gone if e.key() not in keys]
        if missing:
            e = missing[0]
            raise InvalidArgumentError(
                f"whitelist {wl.name!r} version {latest.version} has no {e.kind.value} entry "
                f"{e.bank}/{e.pcr}/{e.digest.hex()}{' ' + e.path if e.path else ''} "
                f"({len(missing)} of {len(gone)} not present)",
                argument="entries",
            )
        drop = {e.key() for e in gone}
        remaining = [e for e in current.entries if e.key() not in drop]
        if not remaining:
            raise PolicyError(f"removing these entries would leave whitelist {wl.name!r} empty")
        return self._write(
            wl,
            latest.version + 1,
            remaining,
            latest.description,
            validate.name(actor, "actor", empty=True),
            latest.source_host,
            now,
        )

    def delete(self, name: str, *, now: datetime) -> None:
        """Soft-delete ``name`` (its versions stay). Raises WhitelistNotFoundError,
        WhitelistInUseError when the latest version of an active policy references it."""
        now = validate.utc(now, "now")
        wl = active_whitelist(self._s, name, lock=True)
        latest = latest_policy_versions().subquery()
        users = sorted(
            set(
                self._s.scalars(
                    select(latest.c.name)
                    .join(
                        PolicyWhitelistRefRow,
                        PolicyWhitelistRefRow.policy_version_id == latest.c.id,
                    )
                    .where(PolicyWhitelistRefRow.whitelist_name == wl.name)
                )
            )
        )
        if users:
            raise WhitelistInUseError(
                f"whitelist {wl.name!r} is used by policies {', '.join(users)}",
                name=wl.name,
                used_by=tuple(f"policy:{u}" for u in users),
            )
        wl.deleted_at = now
        self._s.flush()

    # ------------------------------------------------------------------ internals

    def _begin_change(
        self, name: str, expected_version: int | None
    ) -> tuple[WhitelistRow, WhitelistVersionRow, Whitelist]:
        wl = active_whitelist(self._s, name, lock=True)  # serialises writers (PostgreSQL)
        latest = whitelist_version(self._s, wl, None)
        if expected_version is not None and expected_version != latest.version:
            raise VersionConflictError(
                f"whitelist {wl.name!r} is at version {latest.version}, not {expected_version}",
                name=wl.name,
                expected=expected_version,
                actual=latest.version,
            )
        return wl, latest, self._load(wl.name, latest)

    def _load(self, wl_name: str, version: WhitelistVersionRow) -> Whitelist:
        rows = self._s.scalars(
            select(WhitelistEntryRow)
            .where(WhitelistEntryRow.version_id == version.id)
            .order_by(WhitelistEntryRow.position)
        )
        return convert.whitelist_from_rows(wl_name, version, rows)

    def _write(
        self,
        wl: WhitelistRow,
        number: int,
        entries: builtins.list[WhitelistEntry],
        description: str,
        actor: str,
        source_host: str,
        now: datetime,
    ) -> Whitelist:
        version = WhitelistVersionRow(
            whitelist_id=wl.id,
            version=number,
            description=description,
            source_host=source_host,
            created_at=now,
            created_by=actor,
        )
        add_version(self._s, version, "whitelist", wl.name, number)
        self._s.execute(
            insert(WhitelistEntryRow),
            [convert.entry_values(version.id, i, e) for i, e in enumerate(entries)],
        )
        return Whitelist(
            name=wl.name,
            version=number,
            entries=tuple(entries),
            description=description,
            created_at=now,
            created_by=actor,
            source_host=source_host,
        )
