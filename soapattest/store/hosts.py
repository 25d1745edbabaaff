"""Hosts: registration (soft delete, re-registration), identity history, quote state."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from soapattest.errors import HostExistsError, UnknownHostError
from soapattest.model import Host, HostIdentity, QuoteState
from soapattest.store import convert, validate
from soapattest.store.core import connection, expire, table
from soapattest.store.db import guarded
from soapattest.store.orm import HostIdentityHistoryRow, HostRow, PoolRow
from soapattest.store.queries import active_host, require_policy

_HOSTS = table(HostRow)
_POOLS = table(PoolRow)
_WITH_POLICY = (
    select(_HOSTS, _POOLS.c.policy.label("pool_policy"))
    .outerjoin(_POOLS, _POOLS.c.name == _HOSTS.c.pool)
    .where(_HOSTS.c.name == bindparam("b_name"), _HOSTS.c.deleted_at.is_(None))
)
_QUOTE_STATE = (
    update(_HOSTS)
    .where(_HOSTS.c.name == bindparam("b_name"), _HOSTS.c.deleted_at.is_(None))
    .values(
        quote_clock=bindparam("quote_clock"),
        quote_reset_count=bindparam("quote_reset_count"),
        quote_restart_count=bindparam("quote_restart_count"),
        quote_firmware_version=bindparam("quote_firmware_version"),
        quote_safe=bindparam("quote_safe"),
    )
)


@guarded
class HostRepository:
    """``tx.hosts``. Names are unique among active hosts; a deleted host's name can be
    registered again (a new registration: its own identity history; reports of the old
    registration stay but never count as the new one's latest)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, host: Host, now: datetime) -> Host:
        """Register ``host`` (its identity and last quote state, if given, too).

        Returns the stored host. Raises HostExistsError when an active host has
        the name, PolicyNotFoundError when ``host.policy`` names no policy,
        InvalidArgumentError for malformed fields.
        """
        now = validate.utc(now, "now")
        host_name = validate.name(host.name, "name")
        policy = validate.name(host.policy, "policy", empty=True) or None
        if self.find(host_name) is not None:
            raise HostExistsError(
                f"a host named {host_name!r} is already registered", name=host_name
            )
        if policy is not None:
            require_policy(self._s, policy)
        row = HostRow(
            name=host_name,
            agent_url=validate.text(host.agent_url, "agent_url"),
            pool=validate.name(host.pool, "pool", empty=True) or None,
            policy=policy,
            labels=validate.labels(host.labels),
            description=validate.text(host.description, "description"),
            created_at=now,
            updated_at=now,
            deleted_at=None,
            **convert.identity_columns(host.identity, now if host.identity else None),
            **convert.quote_columns(host.last_quote),
        )
        self._s.add(row)
        try:
            self._s.flush()
        except sa_exc.IntegrityError as exc:  # a concurrent registration won the race
            raise HostExistsError(
                f"a host named {host_name!r} is already registered", name=host_name
            ) from exc
        return convert.host_from_row(row)

    def get(self, name: str) -> Host:
        """The active host ``name``; UnknownHostError when there is none."""
        return convert.host_from_row(active_host(self._s, name))

    def find(self, name: str) -> Host | None:
        """The active host ``name`` or None."""
        row = self._s.scalars(
            select(HostRow).where(HostRow.name == name, HostRow.deleted_at.is_(None))
        ).one_or_none()
        return None if row is None else convert.host_from_row(row)

    def list(
        self, *, pool: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[builtins.list[Host], int]:
        """Active hosts ordered by name (optionally of one pool), one page of them and the
        total count. InvalidArgumentError for a negative offset or a limit above 10000."""
        offset, limit = validate.page(offset, limit)
        where: builtins.list[ColumnElement[bool]] = [HostRow.deleted_at.is_(None)]
        if pool is not None:
            where.append(HostRow.pool == pool if pool else HostRow.pool.is_(None))
        total = self._s.scalar(select(func.count()).select_from(HostRow).where(*where)) or 0
        rows = self._s.scalars(
            select(HostRow).where(*where).order_by(HostRow.name).offset(offset).limit(limit)
        )
        return [convert.host_from_row(r) for r in rows], total

    def names(self, pool: str | None = None) -> builtins.list[str]:
        """Names of the active hosts (of ``pool`` when given), sorted."""
        query = select(HostRow.name).where(HostRow.deleted_at.is_(None))
        if pool is not None:
            query = query.where(HostRow.pool == pool if pool else HostRow.pool.is_(None))
        return builtins.list(self._s.scalars(query.order_by(HostRow.name)))

    def update(
        self,
        name: str,
        *,
        agent_url: str | None = None,
        pool: str | None = None,
        policy: str | None = None,
        labels: Mapping[str, str] | None = None,
        description: str | None = None,
        now: datetime,
    ) -> Host:
        """Change the given fields (None: unchanged; ``pool=""``/``policy=""``: clear).

        The identity is not changed here (see :meth:`set_identity`). Returns the
        updated host. Raises UnknownHostError, PolicyNotFoundError,
        InvalidArgumentError.
        """
        now = validate.utc(now, "now")
        row = active_host(self._s, name, lock=True)
        if agent_url is not None:
            row.agent_url = validate.text(agent_url, "agent_url")
        if pool is not None:
            row.pool = validate.name(pool, "pool", empty=True) or None
        if policy is not None:
            new_policy = validate.name(policy, "policy", empty=True) or None
            if new_policy is not None:
                require_policy(self._s, new_policy)
            row.policy = new_policy
        if labels is not None:
            row.labels = validate.labels(labels)
        if description is not None:
            row.description = validate.text(description, "description")
        row.updated_at = now
        self._s.flush()
        return convert.host_from_row(row)

    def delete(self, name: str, now: datetime) -> None:
        """Soft-delete the active host ``name``: its history and reports stay, the name is
        free again. UnknownHostError when there is none."""
        now = validate.utc(now, "now")
        row = active_host(self._s, name, lock=True)
        row.deleted_at = now
        row.updated_at = now
        self._s.flush()

    def set_identity(self, name: str, identity: HostIdentity, now: datetime) -> None:
        """Make ``identity`` the host's current TPM identity; the previous one (if any) goes
        to the identity history with ``superseded_at=now``. This is the only way an
        identity changes. Raises UnknownHostError, InvalidArgumentError."""
        now = validate.utc(now, "now")
        columns = convert.identity_columns(identity, now)
        row = active_host(self._s, name, lock=True)
        if row.ek_public is not None and row.ak_public is not None and row.ak_name is not None:
            assert row.activated_at is not None
            self._s.add(
                HostIdentityHistoryRow(
                    host_id=row.id,
                    ek_public=row.ek_public,
                    ek_certificate=row.ek_certificate or b"",
                    ak_public=row.ak_public,
                    ak_name=row.ak_name,
                    qualified_signer=row.qualified_signer or b"",
                    agent_tls_pin=row.agent_tls_pin,
                    activated_at=row.activated_at,
                    valid_from=row.identity_since or row.created_at,
                    superseded_at=now,
                )
            )
        for key, value in columns.items():
            setattr(row, key, value)
        row.updated_at = now
        self._s.flush()

    def identity_history(self, name: str) -> builtins.list[HostIdentity]:
        """The identities this registration of the host had before its current one, oldest
        first (the current one is ``Host.identity``). UnknownHostError."""
        row = active_host(self._s, name)
        rows = self._s.scalars(
            select(HostIdentityHistoryRow)
            .where(HostIdentityHistoryRow.host_id == row.id)
            .order_by(HostIdentityHistoryRow.superseded_at, HostIdentityHistoryRow.id)
        )
        return [convert.identity_from_history(r) for r in rows]

    def holders_of(self, ek_public: bytes, ak_name: bytes) -> builtins.list[str]:
        """Names of the active hosts whose current identity has this EK public area or this
        AK name (one TPM bound to several hosts), sorted."""
        query = select(HostRow.name).where(
            HostRow.deleted_at.is_(None),
            (HostRow.ek_public == ek_public) | (HostRow.ak_name == ak_name),
        )
        return builtins.list(self._s.scalars(query.order_by(HostRow.name)))

    def record_quote_state(self, name: str, state: QuoteState) -> None:
        """Remember the clock state of the host's last verified quote. UnknownHostError."""
        columns = convert.quote_columns(state)
        # One UPDATE (it locks the row on PostgreSQL; SQLite writers are exclusive).
        result = connection(self._s).execute(_QUOTE_STATE, {"b_name": name, **columns})
        if result.rowcount != 1:
            raise UnknownHostError(f"no host named {name!r}", name=name)
        expire(self._s, HostRow)

    def effective_policy(self, name: str) -> str | None:
        """The host's own policy, else its pool's, else None. UnknownHostError."""
        return self._effective(active_host(self._s, name))

    def get_with_policy(self, name: str) -> tuple[Host, str | None]:
        """The active host and its effective policy (its own, else its pool's), from one
        query. UnknownHostError."""
        row = connection(self._s).execute(_WITH_POLICY, {"b_name": name}).one_or_none()
        if row is None:
            raise UnknownHostError(f"no host named {name!r}", name=name)
        return convert.host_from_row(row), row.policy or (row.pool and row.pool_policy) or None

    def _effective(self, row: HostRow) -> str | None:
        if row.policy:
            return row.policy
        if row.pool:
            return self._s.scalar(select(PoolRow.policy).where(PoolRow.name == row.pool))
        return None
