"""Lookups shared by several repositories (active rows by name, latest versions)."""

from __future__ import annotations

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from soapattest.errors import (
    PolicyNotFoundError,
    UnknownHostError,
    VersionConflictError,
    WhitelistNotFoundError,
)
from soapattest.store.core import connection, table
from soapattest.store.orm import (
    HostRow,
    PolicyRow,
    PolicyVersionRow,
    WhitelistRow,
    WhitelistVersionRow,
)


def active_host(session: Session, host_name: str, *, lock: bool = False) -> HostRow:
    """The active row of ``host_name``; UnknownHostError when there is none.
    ``lock``: SELECT ... FOR UPDATE (PostgreSQL; SQLite write transactions are exclusive)."""
    query = select(HostRow).where(HostRow.name == host_name, HostRow.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise UnknownHostError(f"no host named {host_name!r}", name=host_name)
    return row


def active_policy(
    session: Session, policy_name: str, *, lock: bool = False, share: bool = False
) -> PolicyRow:
    """The active row of ``policy_name``; PolicyNotFoundError when there is none.
    ``share``: SELECT ... FOR SHARE, so the policy cannot be deleted before we commit."""
    query = select(PolicyRow).where(PolicyRow.name == policy_name, PolicyRow.deleted_at.is_(None))
    if lock or share:
        query = query.with_for_update(read=not lock)
    row = session.scalars(query).one_or_none()
    if row is None:
        raise PolicyNotFoundError(f"no policy named {policy_name!r}", name=policy_name)
    return row


def require_policy(session: Session, policy_name: str) -> None:
    """PolicyNotFoundError unless an active policy has this name; it stays so (a share
    lock on PostgreSQL) until the caller's transaction ends."""
    active_policy(session, policy_name, share=True)


def active_whitelist(
    session: Session, wl_name: str, *, lock: bool = False, share: bool = False
) -> WhitelistRow:
    """The active row of ``wl_name``; WhitelistNotFoundError when there is none.
    ``share``: SELECT ... FOR SHARE, so it cannot be deleted before we commit."""
    query = select(WhitelistRow).where(
        WhitelistRow.name == wl_name, WhitelistRow.deleted_at.is_(None)
    )
    if lock or share:
        query = query.with_for_update(read=not lock)
    row = session.scalars(query).one_or_none()
    if row is None:
        raise WhitelistNotFoundError(f"no whitelist named {wl_name!r}", name=wl_name)
    return row


def whitelist_version(
    session: Session, wl: WhitelistRow, version: int | None
) -> WhitelistVersionRow:
    """Version ``version`` (None: the latest) of ``wl``; WhitelistNotFoundError."""
    query = select(WhitelistVersionRow).where(WhitelistVersionRow.whitelist_id == wl.id)
    if version is None:
        query = query.order_by(WhitelistVersionRow.version.desc()).limit(1)
    else:
        query = query.where(WhitelistVersionRow.version == version)
    row = session.scalars(query).one_or_none()
    if row is None:
        raise WhitelistNotFoundError(
            f"whitelist {wl.name!r} has no version {version}", name=wl.name, version=version
        )
    return row


def _version_id_queries(
    parent_row: type[object], version_row: type[object], parent_fk: str
) -> tuple[Select[int], Select[int]]:
    parent, versions = table(parent_row), table(version_row)
    base = (
        select(versions.c.id)
        .join(parent, parent.c.id == versions.c[parent_fk])
        .where(parent.c.name == bindparam("b_name"), parent.c.deleted_at.is_(None))
    )
    latest = base.order_by(versions.c.version.desc()).limit(1)
    return latest, base.where(versions.c.version == bindparam("b_version"))


_VERSION_IDS = {
    "whitelist": _version_id_queries(WhitelistRow, WhitelistVersionRow, "whitelist_id"),
    "policy": _version_id_queries(PolicyRow, PolicyVersionRow, "policy_id"),
}


def find_version_id(session: Session, kind: str, name: str, version: int | None) -> int | None:
    """The id of version ``version`` (None: the latest) of the active ``kind``
    (``"whitelist"``/``"policy"``) ``name`` in one Core query; None when there is no
    such object or version (callers then raise their not-found error)."""
    latest, exact = _VERSION_IDS[kind]
    if version is None:
        found = connection(session).execute(latest, {"b_name": name}).scalar_one_or_none()
    else:
        found = connection(session).execute(
            exact, {"b_name": name, "b_version": version}
        ).scalar_one_or_none()
    return None if found is None else int(found)


def latest_policy_versions() -> Select[int, str, int]:
    """(policy_versions.id, policy name, version) of the latest version of every active policy."""
    newest = (
        select(PolicyVersionRow.policy_id, func.max(PolicyVersionRow.version).label("version"))
        .group_by(PolicyVersionRow.policy_id)
        .subquery()
    )
    return (
        select(PolicyVersionRow.id, PolicyRow.name, PolicyVersionRow.version)
        .join(PolicyRow, PolicyRow.id == PolicyVersionRow.policy_id)
        .join(
            newest,
            (newest.c.policy_id == PolicyVersionRow.policy_id)
            & (newest.c.version == PolicyVersionRow.version),
        )
        .where(PolicyRow.deleted_at.is_(None))
    )


def latest_whitelist_versions() -> Select[WhitelistVersionRow, str]:
    """(latest version row, whitelist name) of every active whitelist."""
    newest = (
        select(
            WhitelistVersionRow.whitelist_id, func.max(WhitelistVersionRow.version).label("version")
        )
        .group_by(WhitelistVersionRow.whitelist_id)
        .subquery()
    )
    return (
        select(WhitelistVersionRow, WhitelistRow.name)
        .join(WhitelistRow, WhitelistRow.id == WhitelistVersionRow.whitelist_id)
        .join(
            newest,
            (newest.c.whitelist_id == WhitelistVersionRow.whitelist_id)
            & (newest.c.version == WhitelistVersionRow.version),
        )
        .where(WhitelistRow.deleted_at.is_(None))
    )


def add_version(session: Session, row: object, kind: str, name: str, number: int) -> None:
    """Insert version row ``row`` (version ``number`` of ``kind`` ``name``) and flush.

    The (object, version) unique constraint decides between concurrent writers:
    the loser gets VersionConflictError and writes nothing.
    """
    session.add(row)
    try:
        session.flush()
    except sa_exc.IntegrityError as exc:  # another writer took this version number
        raise VersionConflictError(
            f"{kind} {name!r} version {number} was written concurrently",
            name=name,
            expected=number - 1,
            actual=number,
        ) from exc
