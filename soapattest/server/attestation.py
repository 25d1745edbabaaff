"""Attestation use cases: pull fresh evidence, appraise it, store an immutable report.

:func:`attest_host` is the one flow; bulk and polling run it concurrently on
the context's bounded pool. Every evaluation, whatever its outcome, becomes a
stored report and an audit record, so an UNKNOWN or UNTRUSTED result always
supersedes an earlier TRUSTED one. Agents that fail (refused, timeout,
garbage, fault) yield UNKNOWN, never TRUSTED; bad evidence yields UNTRUSTED.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from soapattest.errors import (
    AgentFaultError,
    AgentResponseError,
    AgentUnreachableError,
    InvalidArgumentError,
    NonceError,
    NoPolicyError,
    SoapAttestError,
)
from soapattest.model import Host, Policy, QuoteState, TrustReport, Whitelist
from soapattest.server import validate
from soapattest.server.audit import audited
from soapattest.server.context import ServerContext
from soapattest.store import Tx
from soapattest.tpm.eventlog import EventLogLimits
from soapattest.tpm.public import parse_public
from soapattest.verify.appraise import (
    AppraisalInput,
    Evidence,
    appraise,
    required_selection,
    unknown_report,
    validate_policy,
)
from soapattest.verify.quote import QuoteEvidence

log = logging.getLogger("soapattest.server.attestation")
NONCE_BYTES = 32
PULL_PURPOSE = "attest"  # nonces the server sends to agents itself
CALLER_PURPOSE = "caller"  # nonces handed to callers for VerifyQuote
AGENT_ERRORS = (AgentUnreachableError, AgentResponseError, AgentFaultError)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one attestation of one host needs, read in one transaction."""

    host: Host
    policy: Policy
    whitelists: tuple[Whitelist, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of one host in a bulk call: a report, or the error that prevented one."""

    host: str
    report: TrustReport | None
    error: SoapAttestError | None = None
    cached: bool = False


def _plan(tx: Tx, name: str) -> Plan:
    host = tx.hosts.get(name)
    if host.identity is None:
        raise NoPolicyError(f"host '{name}' has no activated identity")
    policy_name = tx.hosts.effective_policy(name)
    if not policy_name:
        raise NoPolicyError(f"host '{name}' has no policy (neither its own nor its pool's)")
    policy = tx.policies.get(policy_name)
    whitelists = tuple(tx.whitelists.get(ref.name, ref.version) for ref in policy.whitelists)
    validate_policy(policy, whitelists)
    return Plan(host, policy, whitelists)


def _store_report(
    ctx: ServerContext,
    actor: str,
    report: TrustReport,
    state: QuoteState | None,
    evidence_note: dict[str, str],
    event_log: bytes | None = None,
) -> TrustReport:
    with ctx.store.transaction() as tx:
        if event_log:
            tx.evidence.put(event_log, "eventlog", now=report.created_at)
        stored = tx.reports.add(report)
        if state is not None:
            tx.hosts.record_quote_state(report.host, state)
        tx.audit.record(
            actor=actor,
            action="trust.decision",
            target_type="host",
            target=report.host,
            outcome=report.status.value,
            details={
                "report_id": stored.report_id,
                "policy": f"{report.policy}@{report.policy_version}",
                "failures": [c.id for c in report.failures()][:20],
                **evidence_note,
            },
            at=ctx.clock(),
        )
    return stored


def _fetch_ima(ctx: ServerContext, url: str) -> bytes:
    data = bytearray()
    offset = 0
    while True:
        chunk, next_offset, more = ctx.agents.ima_log(url, offset)
        data += chunk
        if len(data) > ctx.config.ima_log_max_bytes:
            raise AgentResponseError(f"the IMA list exceeds {ctx.config.ima_log_max_bytes} bytes")
        if not more:
            return bytes(data)
        if next_offset <= offset or not chunk:
            raise AgentResponseError("GetImaLog did not advance")
        offset = next_offset


def attest_host(ctx: ServerContext, actor: str, name: str) -> TrustReport:
    """Attest one host now: fresh nonce, quote, logs, appraisal, stored report.

    Raises (no report stored) when the request itself is wrong: unknown host,
    no policy, unusable policy. Agent failures give a stored UNKNOWN report.
    """
    validate.name(name, "host")
    with ctx.store.transaction(readonly=True) as tx:
        plan = _plan(tx, name)
    assert plan.host.identity is not None
    policy = plan.policy
    selection = required_selection(policy, plan.whitelists)
    nonce = ctx.random_bytes(NONCE_BYTES)
    issued = ctx.clock()
    with ctx.store.transaction() as tx:
        tx.nonces.issue(
            name,
            nonce,
            PULL_PURPOSE,
            now=issued,
            expires_at=issued + timedelta(seconds=ctx.config.nonce_ttl),
        )
    url = plan.host.agent_url
    event_log: bytes | None = None
    ima_log: bytes | None = None
    try:
        q = ctx.agents.quote(url, nonce, selection)
        if policy.use_event_log or policy.secure_boot is not None:
            event_log = ctx.agents.event_log(url)
        if policy.ima.mode.value != "off":
            ima_log = _fetch_ima(ctx, url)
    except AGENT_ERRORS as exc:
        report = unknown_report(name, "agent.evidence", exc.message, ctx.clock(), policy=policy)
        log.warning("host %s: %s", name, exc.message)
        return _store_report(ctx, actor, report, None, {"agent": exc.code})
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        fresh = tx.nonces.consume(name, nonce, PULL_PURPOSE, now=now)
    if not fresh:
        report = unknown_report(
            name,
            "quote.freshness",
            f"the agent answered after the nonce expired ({ctx.config.nonce_ttl} s)",
            now,
            policy=policy,
        )
        return _store_report(ctx, actor, report, None, {})
    inp = AppraisalInput(
        host=name,
        ak=parse_public(plan.host.identity.ak_public),
        nonce=nonce,
        policy=policy,
        whitelists=plan.whitelists,
        now=now,
        previous=plan.host.last_quote,
        qualified_signer=plan.host.identity.qualified_signer,
        log_limits=EventLogLimits(max_log_bytes=ctx.config.event_log_max_bytes),
    )
    result = appraise(
        Evidence(QuoteEvidence(q.attest, q.signature, q.raw_pcrs), event_log, ima_log), inp
    )
    state = result.quote.state if result.quote is not None else None
    return _store_report(ctx, actor, result.report, state, {}, event_log)


def attest_hosts(ctx: ServerContext, actor: str, names: Sequence[str]) -> list[Outcome]:
    """Attest many hosts concurrently (bounded by ``bulk_concurrency``), in input order."""
    _check_bulk(ctx, names)

    def one(n: str) -> Outcome:
        try:
            return Outcome(n, attest_host(ctx, actor, n))
        except SoapAttestError as exc:
            return Outcome(n, None, exc)

    return list(ctx.pool.map(one, names))


def poll_hosts(ctx: ServerContext, actor: str, names: Sequence[str], max_age: int) -> list[Outcome]:
    """Current trust of many hosts: reports younger than ``max_age`` s, fresh attestation else."""
    _check_bulk(ctx, names)
    if max_age < 0 or max_age > 31 * 86400:
        raise InvalidArgumentError("max_age must be within 0..2678400 seconds", argument="max_age")
    now = ctx.clock()
    with ctx.store.transaction(readonly=True) as tx:
        latest = tx.reports.latest_many(list(names))
    fresh: dict[str, Outcome] = {}
    stale: list[str] = []
    for n in names:
        report = latest.get(n)
        if report is not None and (now - report.created_at).total_seconds() <= max_age:
            fresh[n] = Outcome(n, report, cached=True)
        else:
            stale.append(n)
    attested = {o.host: o for o in attest_hosts(ctx, actor, stale)} if stale else {}
    return [fresh.get(n) or attested[n] for n in names]


def _check_bulk(ctx: ServerContext, names: Sequence[str]) -> None:
    if not names:
        raise InvalidArgumentError("no host named", argument="hosts")
    if len(names) > ctx.config.max_hosts_per_call:
        raise InvalidArgumentError(
            f"at most {ctx.config.max_hosts_per_call} hosts per call", argument="hosts"
        )
    if len(set(names)) != len(names):
        raise InvalidArgumentError("a host is named twice", argument="hosts")
    for n in names:
        validate.name(n, "host")


def issue_nonce(ctx: ServerContext, actor: str, name: str) -> bytes:
    """A single-use nonce bound to ``name``, for a caller that fetches the quote itself."""
    validate.name(name, "host")
    with audited(ctx, actor, "nonce.issue", "host", name) as audit:
        nonce = ctx.random_bytes(NONCE_BYTES)
        now = ctx.clock()
        with ctx.store.transaction() as tx:
            tx.hosts.get(name)
            tx.nonces.issue(
                name,
                nonce,
                CALLER_PURPOSE,
                now=now,
                expires_at=now + timedelta(seconds=ctx.config.nonce_ttl),
            )
            audit.record(tx)
        return nonce


def verify_caller_quote(
    ctx: ServerContext,
    actor: str,
    name: str,
    *,
    nonce: bytes,
    evidence: Evidence,
) -> TrustReport:
    """Appraise evidence a caller already holds; ``nonce`` must come from :func:`issue_nonce`.

    A nonce that is unknown, of another host, expired or used is refused
    (Client.InvalidNonce) and changes nothing; otherwise the report is stored.
    """
    validate.name(name, "host")
    with ctx.store.transaction(readonly=True) as tx:
        plan = _plan(tx, name)
    assert plan.host.identity is not None
    now = ctx.clock()
    with ctx.store.transaction() as tx:
        if not tx.nonces.consume(name, nonce, CALLER_PURPOSE, now=now):
            raise NonceError(
                f"the nonce was not issued for host '{name}', has expired, or was used already"
            )
    inp = AppraisalInput(
        host=name,
        ak=parse_public(plan.host.identity.ak_public),
        nonce=nonce,
        policy=plan.policy,
        whitelists=plan.whitelists,
        now=now,
        previous=plan.host.last_quote,
        qualified_signer=plan.host.identity.qualified_signer,
        log_limits=EventLogLimits(max_log_bytes=ctx.config.event_log_max_bytes),
    )
    result = appraise(evidence, inp)
    state = result.quote.state if result.quote is not None else None
    return _store_report(ctx, actor, result.report, state, {"source": "caller"}, evidence.event_log)
