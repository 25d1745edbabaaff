"""Pools: groups of hosts (by ``Host.pool``) and their policy assignment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soapattest.store import validate
from soapattest.store.db import guarded
from soapattest.store.orm import HostRow, PoolRow
from soapattest.store.queries import require_policy


@guarded
class PoolRepository:
    """``tx.pools``. A pool exists while it has active hosts or a policy assignment."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def assign_policy(self, pool: str, policy_name: str | None, now: datetime) -> None:
        """Assign ``policy_name`` to ``pool`` (None or "" removes the assignment).

        Hosts of the pool without a policy of their own are evaluated under it.
        Raises PolicyNotFoundError, InvalidArgumentError.
        """
        now = validate.utc(now, "now")
        pool = validate.name(pool, "pool")
        policy = validate.name(policy_name or "", "policy", empty=True) or None
        if policy is not None:
            require_policy(self._s, policy)
        row = self._s.get(PoolRow, pool, with_for_update=True)
        if row is None:
            if policy is None:
                return
            self._s.add(PoolRow(name=pool, policy=policy, updated_at=now))
        else:
            row.policy = policy
            row.updated_at = now
        self._s.flush()

    def get_policy(self, pool: str) -> str | None:
        """The policy assigned to ``pool``, or None."""
        return self._s.scalar(select(PoolRow.policy).where(PoolRow.name == pool))

    def list(self) -> list[tuple[str, str | None, int]]:
        """Every pool as ``(name, policy or None, number of active hosts)``, sorted by name."""
        counts = dict(
            self._s.execute(
                select(HostRow.pool, func.count())
                .where(HostRow.deleted_at.is_(None), HostRow.pool.is_not(None))
                .group_by(HostRow.pool)
            ).all()
        )
        policies = dict(self._s.execute(select(PoolRow.name, PoolRow.policy)).all())
        names = sorted({str(n) for n in counts} | {n for n, p in policies.items() if p})
        return [(n, policies.get(n), int(counts.get(n, 0))) for n in names]
