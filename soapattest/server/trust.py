"""Trust consumers' use cases: placement questions, trusted hosts of a pool, assertions."""

from __future__ import annotations

from soapattest.errors import InvalidArgumentError
from soapattest.model import PlacementDecision, TrustReport, TrustStatus, WorkloadRequirements
from soapattest.server import validate
from soapattest.server.audit import audited
from soapattest.server.context import ServerContext
from soapattest.server.saml import build_assertion, sign_assertion
from soapattest.verify.placement import decide_placement


def check_requirements(req: WorkloadRequirements) -> WorkloadRequirements:
    """Validate workload requirements from a caller."""
    if not 0 <= req.max_report_age <= 31 * 86400:
        raise InvalidArgumentError("max_report_age must be 0..2678400", argument="requirements")
    for p in req.pools:
        validate.name(p, "pool")
    for p in req.policies:
        validate.name(p, "policy")
    validate.labels(req.labels)
    for c in req.components:
        validate.text(c, "component", 128)
    return req


def check_placement(
    ctx: ServerContext, actor: str, host: str, req: WorkloadRequirements
) -> PlacementDecision:
    """May a workload with ``req`` run on ``host`` now? (Recorded in the audit log.)"""
    validate.name(host, "host")
    check_requirements(req)
    with audited(ctx, actor, "placement.check", "host", host) as audit:
        with ctx.store.transaction(readonly=True) as tx:
            h = tx.hosts.get(host)
            report = tx.reports.latest(host)
            policy = tx.hosts.effective_policy(host)
        decision = decide_placement(h, report, req, policy=policy, now=ctx.clock())
        audit.details.update(allowed=decision.allowed, report_id=decision.report_id)
        return decision


def list_trusted_hosts(
    ctx: ServerContext, pool: str, req: WorkloadRequirements
) -> list[PlacementDecision]:
    """Every host of ``pool`` with its placement decision (allowed ones first)."""
    validate.name(pool, "pool")
    check_requirements(req)
    with ctx.store.transaction(readonly=True) as tx:
        names = tx.hosts.names(pool)
        reports = tx.reports.latest_many(names)
        hosts = [tx.hosts.get(n) for n in names]
        policies = {n: tx.hosts.effective_policy(n) for n in names}
    now = ctx.clock()
    decisions = [
        decide_placement(h, reports.get(h.name), req, policy=policies[h.name], now=now)
        for h in hosts
    ]
    return sorted(decisions, key=lambda d: (not d.allowed, d.host))


def trust_assertion(
    ctx: ServerContext, actor: str, host: str, *, max_age: int | None = None
) -> tuple[bytes, TrustReport]:
    """A signed SAML assertion about ``host``'s newest report.

    With ``max_age`` the report must be younger; refused otherwise (no
    assertion is ever issued from a stale report). UNTRUSTED and UNKNOWN
    reports get assertions too: the consumer reads the status.
    """
    validate.name(host, "host")
    with audited(ctx, actor, "assertion.issue", "host", host) as audit:
        with ctx.store.transaction(readonly=True) as tx:
            h = tx.hosts.get(host)
            report = tx.reports.latest(host)
        now = ctx.clock()
        if report is None:
            raise InvalidArgumentError(f"host '{host}' has never been attested", argument="host")
        if max_age is not None and (now - report.created_at).total_seconds() > max_age:
            raise InvalidArgumentError(
                f"the newest report of '{host}' is older than {max_age} s; attest first",
                argument="max_age",
            )
        element = build_assertion(
            h, report, issuer=ctx.config.saml_issuer, now=now, validity=ctx.config.saml_validity
        )
        xml = sign_assertion(element, ctx.signing.key_pem, ctx.signing.cert_pem)
        audit.details.update(
            report_id=report.report_id, trusted=report.status is TrustStatus.TRUSTED
        )
        return xml, report
