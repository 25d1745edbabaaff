"""Placement decisions: may a workload run on a host, given its newest trust report?

A host is allowed only when every rule holds; every rule that fails is a
reason, so the answer explains itself:

1. the host has a trust report, younger than ``max_report_age``;
2. the report is TRUSTED;
3. every component the workload names is TRUSTED in that report;
4. the host's pool and policy are among those the workload accepts (if any);
5. the host carries every label the workload requires, with that value.
"""

from __future__ import annotations

from datetime import datetime

from soapattest.model import Host, PlacementDecision, TrustReport, TrustStatus, WorkloadRequirements

MAX_REASONS_FROM_REPORT = 5


def decide_placement(
    host: Host,
    report: TrustReport | None,
    req: WorkloadRequirements,
    *,
    policy: str | None,
    now: datetime,
) -> PlacementDecision:
    """Decide whether a workload with requirements ``req`` may run on ``host``.

    ``policy`` is the host's effective policy name (its own or its pool's).
    """
    deny: list[str] = []
    allow: list[str] = []
    # 1. A fresh report.
    if report is None:
        deny.append(f"host '{host.name}' has never been attested")
    else:
        age = (now - report.created_at).total_seconds()
        if age > req.max_report_age:
            deny.append(
                f"newest report {report.report_id} is {age:.0f} s old; the workload accepts "
                f"at most {req.max_report_age} s"
            )
        # 2. Trusted.
        if report.status is not TrustStatus.TRUSTED:
            deny.append(f"newest report {report.report_id} is {report.status.value}")
            deny.extend(c.reason for c in report.failures()[:MAX_REASONS_FROM_REPORT])
        else:
            allow.append(f"report {report.report_id} is TRUSTED ({age:.0f} s old)")
        # 3. Components.
        components = report.components()
        for name in req.components:
            status = components.get(name)
            if status is not TrustStatus.TRUSTED:
                deny.append(
                    f"component '{name}' is {status.value if status else 'not evaluated'}"
                )
    # 4. Pool and policy.
    if req.pools and host.pool not in req.pools:
        deny.append(f"host pool '{host.pool}' is not one of {', '.join(req.pools)}")
    if req.policies and policy not in req.policies:
        deny.append(f"host policy '{policy or '-'}' is not one of {', '.join(req.policies)}")
    # 5. Labels.
    for key, value in sorted(req.labels.items()):
        actual = host.labels.get(key)
        if actual != value:
            deny.append(f"label {key}={value} required, host has {key}={actual or '-'}")
    if deny:
        return PlacementDecision(
            host.name, False, tuple(deny), report.report_id if report else None
        )
    return PlacementDecision(host.name, True, tuple(allow), report.report_id if report else None)
