"""Policies: named, versioned definitions; every change writes a new immutable version."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from soapattest.errors import (
    PolicyError,
    PolicyExistsError,
    PolicyInUseError,
    PolicyNotFoundError,
    VersionConflictError,
)
from soapattest.model import Policy
from soapattest.store import convert, validate
from soapattest.store.db import guarded
from soapattest.store.orm import (
    HostRow,
    PolicyRow,
    PolicyVersionRow,
    PolicyWhitelistRefRow,
    PoolRow,
)
from soapattest.store.queries import (
    active_policy,
    active_whitelist,
    add_version,
    find_version_id,
    latest_policy_versions,
    whitelist_version,
)


@guarded
class PolicyRepository:
    """``tx.policies``. Whitelist references are by name with a pinned version or LATEST
    (None); they must name existing whitelists (and versions) when the policy is written."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def create(self, policy: Policy, *, actor: str, now: datetime) -> Policy:
        """Store ``policy`` as version 1 of ``policy.name`` (``policy.version``,
        ``created_at`` and ``created_by`` are ignored: the store sets them).

        Raises PolicyExistsError, PolicyError (no whitelists or no banks),
        WhitelistNotFoundError (a reference names no whitelist/version),
        InvalidArgumentError.
        """
        now = validate.utc(now, "now")
        policy_name = validate.name(policy.name, "name")
        actor = validate.name(actor, "actor", empty=True)
        self._check(policy)
        exists = self._s.scalar(
            select(PolicyRow.id).where(
                PolicyRow.name == policy_name, PolicyRow.deleted_at.is_(None)
            )
        )
        if exists is not None:
            raise PolicyExistsError(f"a policy named {policy_name!r} exists", name=policy_name)
        row = PolicyRow(name=policy_name, created_at=now, deleted_at=None)
        self._s.add(row)
        try:
            self._s.flush()
        except sa_exc.IntegrityError as exc:  # a concurrent create won the race
            raise PolicyExistsError(
                f"a policy named {policy_name!r} exists", name=policy_name
            ) from exc
        return self._write(row, 1, policy, actor, now)

    def update(
        self, policy: Policy, *, actor: str, now: datetime, expected_version: int | None = None
    ) -> Policy:
        """Store ``policy`` as the next version of ``policy.name``.

        Raises PolicyNotFoundError, VersionConflictError (``expected_version``
        is not the latest), and the errors of :meth:`create`.
        """
        now = validate.utc(now, "now")
        actor = validate.name(actor, "actor", empty=True)
        self._check(policy)
        row = active_policy(self._s, policy.name, lock=True)
        latest = self._latest(row)
        if expected_version is not None and expected_version != latest.version:
            raise VersionConflictError(
                f"policy {row.name!r} is at version {latest.version}, not {expected_version}",
                name=row.name,
                expected=expected_version,
                actual=latest.version,
            )
        return self._write(row, latest.version + 1, policy, actor, now)

    def get(self, name: str, version: int | None = None) -> Policy:
        """Version ``version`` of ``name`` (None: the latest). PolicyNotFoundError."""
        row = active_policy(self._s, name)
        if version is None:
            return self._load(row.name, self._latest(row))
        found = self._s.scalars(
            select(PolicyVersionRow).where(
                PolicyVersionRow.policy_id == row.id, PolicyVersionRow.version == version
            )
        ).one_or_none()
        if found is None:
            raise PolicyNotFoundError(
                f"policy {row.name!r} has no version {version}", name=row.name, version=version
            )
        return self._load(row.name, found)

    def version_id(self, name: str, version: int | None = None) -> int:
        """The immutable id of version ``version`` of ``name`` (None: the latest); see
        :meth:`WhitelistRepository.version_id`. PolicyNotFoundError."""
        quick = find_version_id(self._s, "policy", name, version)
        if quick is not None:
            return quick
        row = active_policy(self._s, name)  # raises the precise not-found error
        if version is None:
            return self._latest(row).id
        found = self._s.scalars(
            select(PolicyVersionRow.id).where(
                PolicyVersionRow.policy_id == row.id, PolicyVersionRow.version == version
            )
        ).one_or_none()
        if found is None:
            raise PolicyNotFoundError(
                f"policy {row.name!r} has no version {version}", name=row.name, version=version
            )
        return int(found)

    def versions(self, name: str) -> builtins.list[int]:
        """Every version number of ``name``, ascending. PolicyNotFoundError."""
        row = active_policy(self._s, name)
        return builtins.list(
            self._s.scalars(
                select(PolicyVersionRow.version)
                .where(PolicyVersionRow.policy_id == row.id)
                .order_by(PolicyVersionRow.version)
            )
        )

    def list(self) -> builtins.list[Policy]:
        """The latest version of every active policy, sorted by name."""
        latest = latest_policy_versions().subquery()
        rows = self._s.execute(
            select(PolicyVersionRow, latest.c.name)
            .join(latest, latest.c.id == PolicyVersionRow.id)
            .order_by(latest.c.name)
        ).all()
        refs: dict[int, builtins.list[tuple[str, int | None]]] = {v.id: [] for v, _ in rows}
        if refs:
            for ref in self._s.scalars(
                select(PolicyWhitelistRefRow)
                .where(PolicyWhitelistRefRow.policy_version_id.in_(builtins.list(refs)))
                .order_by(PolicyWhitelistRefRow.policy_version_id, PolicyWhitelistRefRow.position)
            ):
                refs[ref.policy_version_id].append((ref.whitelist_name, ref.whitelist_version))
        return [convert.policy_from_rows(n, v, refs[v.id]) for v, n in rows]

    def delete(self, name: str, now: datetime) -> None:
        """Soft-delete ``name`` (its versions stay). Raises PolicyNotFoundError,
        PolicyInUseError when an active host or a pool is assigned to it."""
        now = validate.utc(now, "now")
        row = active_policy(self._s, name, lock=True)
        hosts = self._s.scalars(
            select(HostRow.name)
            .where(HostRow.policy == row.name, HostRow.deleted_at.is_(None))
            .order_by(HostRow.name)
        ).all()
        pools = self._s.scalars(
            select(PoolRow.name).where(PoolRow.policy == row.name).order_by(PoolRow.name)
        ).all()
        if hosts or pools:
            used_by = tuple(f"host:{h}" for h in hosts) + tuple(f"pool:{p}" for p in pools)
            raise PolicyInUseError(
                f"policy {row.name!r} is assigned to {', '.join(used_by)}",
                name=row.name,
                used_by=used_by,
            )
        row.deleted_at = now
        self._s.flush()

    # ------------------------------------------------------------------ internals

    def _check(self, policy: Policy) -> None:
        convert.policy_values(policy)
        refs = convert.whitelist_refs(policy)
        if not refs:
            raise PolicyError(f"policy {policy.name!r} names no whitelist")
        if not policy.banks:
            raise PolicyError(f"policy {policy.name!r} names no PCR bank")
        for ref in refs:
            wl = active_whitelist(self._s, ref.name, share=True)  # no delete until we commit
            whitelist_version(self._s, wl, ref.version)

    def _latest(self, row: PolicyRow) -> PolicyVersionRow:
        return self._s.scalars(
            select(PolicyVersionRow)
            .where(PolicyVersionRow.policy_id == row.id)
            .order_by(PolicyVersionRow.version.desc())
            .limit(1)
        ).one()

    def _load(self, policy_name: str, version: PolicyVersionRow) -> Policy:
        refs = self._s.execute(
            select(PolicyWhitelistRefRow.whitelist_name, PolicyWhitelistRefRow.whitelist_version)
            .where(PolicyWhitelistRefRow.policy_version_id == version.id)
            .order_by(PolicyWhitelistRefRow.position)
        )
        return convert.policy_from_rows(policy_name, version, refs)

    def _write(
        self, row: PolicyRow, number: int, policy: Policy, actor: str, now: datetime
    ) -> Policy:
        version = PolicyVersionRow(
            policy_id=row.id,
            version=number,
            created_at=now,
            created_by=actor,
            **convert.policy_values(policy),
        )
        add_version(self._s, version, "policy", row.name, number)
        for position, ref in enumerate(policy.whitelists):
            self._s.add(
                PolicyWhitelistRefRow(
                    policy_version_id=version.id,
                    position=position,
                    whitelist_name=ref.name,
                    whitelist_version=ref.version,
                )
            )
        self._s.flush()
        return self._load(row.name, version)
