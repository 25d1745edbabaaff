"""Placement questions: may a workload run on a host?"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WorkloadRequirements:
    """What a workload requires of a host, beyond a TRUSTED newest report.

    ``max_report_age``: seconds; the host's newest report must be younger.
    ``policies``/``pools``: when non-empty the host's policy/pool must be one of them.
    ``labels``: host labels that must be present with these values.
    ``components``: report components that must be TRUSTED individually.
    """

    max_report_age: int = 3600
    policies: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlacementDecision:
    """The answer to a placement question, with every reason that led to it."""

    host: str
    allowed: bool
    reasons: tuple[str, ...]
    report_id: int | None = None
