"""Attestation use cases: pull fresh evidence, appraise it, store an immutable report.

:func:`attest_host` is the one flow; bulk and polling run it concurrently on
the context's bounded pool. Every evaluation, whatever its outcome, becomes a
stored report and an audit record, so an UNKNOWN or UNTRUSTED result always
supersedes an earlier TRUSTED one. Agents that fail (refused, timeout,
garbage, fault) yield UNKNOWN, never TRUSTED; bad evidence yields UNTRUSTED.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from soapattest.errors import (
    AgentFaultError,
    AgentResponseError,
    AgentUnreachableError,
    DatabaseUnavailableError,
    InvalidArgumentError,
    NonceError,
    NoPolicyError,
    NotFoundError,
    PolicyError,
    SoapAttestError,
)
from soapattest.model import Host, Policy, QuoteState, TrustReport, Whitelist
from soapattest.server import validate
from soapattest.server.agents import AgentQuote
from soapattest.server.audit import audited
from soapattest.server.context import ServerContext
from soapattest.store import Tx
from soapattest.tpm.eventlog import EventLogLimits
from soapattest.tpm.pcr import PcrSelection
from soapattest.tpm.public import TpmPublic, parse_public
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


def _plan(tx: Tx, name: str, ctx: ServerContext) -> Plan:
    host, policy_name = tx.hosts.get_with_policy(name)
    if host.identity is None:
        raise NoPolicyError(f"host '{name}' has no activated identity")
    if not policy_name:
        raise NoPolicyError(f"host '{name}' has no policy (neither its own nor its pool's)")
    policy = ctx.versions.policy(tx, policy_name)
    whitelists = tuple(
        ctx.versions.whitelist(tx, ref.name, ref.version) for ref in policy.whitelists
    )
    validate_policy(policy, whitelists)
    return Plan(host, policy, whitelists)


@dataclass
class _Job:
    """One host's attestation in flight (plan -> nonce -> evidence -> report)."""

    plan: Plan
    nonce: bytes
    selection: PcrSelection
    expires_at: datetime | None = None  # of a nonce the server issued (pull attestation)
    evidence: Evidence | None = None
    agent_error: SoapAttestError | None = None
    quote: AgentQuote | None = None  # gathered, until the evidence is complete
    ima_log: bytes | None = None
    log_stored: bool = False  # the event log came from the evidence store (no put)
    report: TrustReport | None = None
    state: QuoteState | None = None
    note: dict[str, str] | None = None  # extra details of the audit record


def _record(tx: Tx, ctx: ServerContext, actor: str, jobs: Sequence[_Job]) -> list[TrustReport]:
    """Store finished jobs in ``tx``: evidence blobs, reports (one multi-row INSERT),
    clock states, and one ``trust.decision`` audit record per report."""
    reports: list[TrustReport] = []
    for job in jobs:
        assert job.report is not None
        reports.append(job.report)
        event_log = job.evidence.event_log if job.evidence is not None else None
        if event_log and not job.log_stored:
            tx.evidence.put(event_log, "eventlog", now=job.report.created_at)
    stored = tx.reports.add_many(reports)
    for job, report in zip(jobs, stored, strict=True):
        if job.state is not None:
            tx.hosts.record_quote_state(report.host, job.state)
    at = ctx.clock()
    tx.audit.record_many(
        {
            "actor": actor,
            "action": "trust.decision",
            "target_type": "host",
            "target": report.host,
            "outcome": report.status.value,
            "details": {
                "report_id": report.report_id,
                "policy": f"{report.policy}@{report.policy_version}",
                "failures": [c.id for c in report.failures()][:20],
                **(job.note or {}),
            },
            "at": at,
        }
        for job, report in zip(jobs, stored, strict=True)
    )
    return stored


def _pin(host: Host) -> str | None:
    """The pinned TLS fingerprint of the host's agent, if any."""
    return (host.identity.agent_tls_pin if host.identity else "") or None


# A trust agent's GetImaLog chunk holds at least one whole entry and ends where the next
# entry would not fit into its ima_chunk_max (>= 4096 bytes): two consecutive chunks
# together exceed 4 KiB. An agent averaging less after a few calls is dripping the list
# to hold the attestation (and a bulk call waiting for it) for hours: refused.
IMA_MIN_AVERAGE_CHUNK = 1024
IMA_GRACE_CHUNKS = 8


def _fetch_ima(ctx: ServerContext, url: str, pin: str | None) -> bytes:
    data = bytearray()
    offset = 0
    calls = 0
    while True:
        chunk, next_offset, more = ctx.agents.ima_log(url, offset, pin=pin)
        calls += 1
        data += chunk
        if len(data) > ctx.config.ima_log_max_bytes:
            raise AgentResponseError(f"the IMA list exceeds {ctx.config.ima_log_max_bytes} bytes")
        if not more:
            return bytes(data)
        if next_offset <= offset or not chunk:
            raise AgentResponseError("GetImaLog did not advance")
        if calls > IMA_GRACE_CHUNKS and len(data) < calls * IMA_MIN_AVERAGE_CHUNK:
            raise AgentResponseError(
                f"GetImaLog: {calls} chunks carried only {len(data)} bytes (an agent sends "
                "chunks of kilobytes; refusing a drip of tiny chunks)"
            )
        offset = next_offset


def _needs_log(policy: Policy) -> bool:
    return policy.use_event_log or policy.secure_boot is not None


def _gather_quote(ctx: ServerContext, job: _Job) -> None:
    """Fetch the quote (and the IMA list) of one host from its agent (no database)."""
    url = job.plan.host.agent_url
    pin = _pin(job.plan.host)
    try:
        job.quote = ctx.agents.quote(url, job.nonce, job.selection, pin=pin)
        if job.plan.policy.ima.mode.value != "off":
            job.ima_log = _fetch_ima(ctx, url, pin)
    except AGENT_ERRORS as exc:
        log.warning("host %s: %s", job.plan.host.name, exc.message)
        job.agent_error = exc


def _gather_log(ctx: ServerContext, job: _Job, stored: dict[bytes, bytes]) -> None:
    """Complete one host's evidence: its event log from ``stored`` when the agent named a
    log held there already, else from the agent (no database)."""
    q = job.quote
    if q is None or job.agent_error is not None:
        return
    event_log = None
    if _needs_log(job.plan.policy):
        digest = q.event_log_sha256
        event_log = stored.get(digest) if digest is not None else None
        job.log_stored = event_log is not None
        if event_log is None:
            try:
                event_log = ctx.agents.event_log(job.plan.host.agent_url, pin=_pin(job.plan.host))
            except AGENT_ERRORS as exc:
                log.warning("host %s: %s", job.plan.host.name, exc.message)
                job.agent_error = exc
                return
    job.evidence = Evidence(
        QuoteEvidence(q.attest, q.signature, q.raw_pcrs), event_log, job.ima_log
    )


def _gather(ctx: ServerContext, jobs: Sequence[_Job]) -> None:
    """Fetch the evidence of ``jobs`` from their agents, concurrently on the pool.

    An agent names the SHA-256 of its event log in its quote; logs the evidence
    store holds already are not fetched again (a log counts only if it replays to
    the signed PCR values, so where the bytes come from does not matter to trust).
    """
    def each(step: Callable[[_Job], None]) -> None:
        if len(jobs) == 1:
            step(jobs[0])
        else:
            list(ctx.pool.map(step, jobs))

    each(lambda j: _gather_quote(ctx, j))
    digests = [
        j.quote.event_log_sha256
        for j in jobs
        if j.quote is not None and j.quote.event_log_sha256 is not None
        and _needs_log(j.plan.policy)
    ]
    stored: dict[bytes, bytes] = {}
    if digests:
        with ctx.store.transaction(readonly=True) as tx:
            stored = tx.evidence.get_many(digests)
    each(lambda j: _gather_log(ctx, j, stored))


def _appraise(ctx: ServerContext, job: _Job, fresh: bool, now: datetime) -> None:
    """Turn gathered evidence (or its absence) into the job's report."""
    plan = job.plan
    job.state = None
    name = plan.host.name
    if job.agent_error is not None or job.evidence is None:
        reason = job.agent_error.message if job.agent_error else "no evidence"
        job.report = unknown_report(name, "agent.evidence", reason, now, policy=plan.policy)
        return
    if not fresh:
        job.report = unknown_report(
            name,
            "quote.freshness",
            f"the agent answered after the nonce expired ({ctx.config.nonce_ttl} s)",
            now,
            policy=plan.policy,
        )
        return
    assert plan.host.identity is not None
    inp = AppraisalInput(
        host=name,
        ak=_ak(plan.host.identity.ak_public),
        nonce=job.nonce,
        policy=plan.policy,
        whitelists=plan.whitelists,
        now=now,
        previous=plan.host.last_quote,
        qualified_signer=plan.host.identity.qualified_signer,
        log_limits=EventLogLimits(max_log_bytes=ctx.config.event_log_max_bytes),
    )
    result = appraise(job.evidence, inp)
    job.report = result.report
    job.state = result.quote.state if result.quote is not None else None


@functools.lru_cache(maxsize=4096)
def _ak(ak_public: bytes) -> TpmPublic:
    """Parsed AK public areas, cached by their bytes (immutable values)."""
    return parse_public(ak_public)


def _issue(tx: Tx, ctx: ServerContext, plans: Sequence[Plan]) -> list[_Job]:
    """A job with a fresh pull nonce per plan; the nonces are issued in ``tx``."""
    issued = ctx.clock()
    expires = issued + timedelta(seconds=ctx.config.nonce_ttl)
    jobs = [
        _Job(p, ctx.random_bytes(NONCE_BYTES), required_selection(p.policy, p.whitelists),
             expires_at=expires)
        for p in plans
    ]
    tx.nonces.issue_many(
        ((job.plan.host.name, job.nonce) for job in jobs),
        PULL_PURPOSE,
        now=issued,
        expires_at=expires,
    )
    return jobs


def _finish(ctx: ServerContext, actor: str, jobs: Sequence[_Job]) -> list[TrustReport]:
    """Appraise, then consume the nonces and store every report in one transaction.

    Freshness is judged from the expiry the server gave its own nonce; the
    atomic consumption in the storing transaction confirms it (a nonce that is
    somehow no longer consumable turns its report into the not-fresh UNKNOWN
    one). A failure while storing rolls back everything: no report, no audit
    record, and no consumed nonce (the nonces simply expire unused).
    """
    now = ctx.clock()
    for job in jobs:
        fresh = job.evidence is not None and job.expires_at is not None and now < job.expires_at
        _appraise(ctx, job, fresh, now)
        if job.agent_error is not None:
            job.note = {"agent": job.agent_error.code}
    with ctx.store.transaction() as tx:
        for job in jobs:
            if job.evidence is None or job.expires_at is None or now >= job.expires_at:
                continue  # never consumed: no evidence came back, or it came too late
            if not tx.nonces.consume(job.plan.host.name, job.nonce, PULL_PURPOSE, now=now):
                _appraise(ctx, job, False, now)
        return _record(tx, ctx, actor, jobs)


def attest_host(ctx: ServerContext, actor: str, name: str) -> TrustReport:
    """Attest one host now: fresh nonce, quote, logs, appraisal, stored report.

    Raises (no report stored) when the request itself is wrong: unknown host,
    no policy, unusable policy. Agent failures give a stored UNKNOWN report.
    Two transactions: plan and nonce, then nonce consumption and the report.
    """
    validate.name(name, "host")
    with ctx.store.transaction() as tx:
        (job,) = _issue(tx, ctx, [_plan(tx, name, ctx)])
    _gather(ctx, [job])
    return _finish(ctx, actor, [job])[0]


BATCH = 256  # hosts per database transaction in bulk attestation


def attest_hosts(ctx: ServerContext, actor: str, names: Sequence[str]) -> list[Outcome]:
    """Attest many hosts concurrently, in input order.

    Database work is batched (one transaction for the plans, one for the
    nonces, one for the results, per batch of :data:`BATCH` hosts); agent
    calls run on the bounded pool (``bulk_concurrency``).
    """
    _check_bulk(ctx, names)
    outcomes: dict[str, Outcome] = {}
    for start in range(0, len(names), BATCH):
        batch = names[start : start + BATCH]
        plans: list[Plan] = []
        for name, plan_or_error in _plans(ctx, batch).items():
            if isinstance(plan_or_error, SoapAttestError):
                outcomes[name] = Outcome(name, None, plan_or_error)
            else:
                plans.append(plan_or_error)
        if not plans:
            continue
        with ctx.store.transaction() as tx:
            jobs = _issue(tx, ctx, plans)
        _gather(ctx, jobs)
        for job, report in zip(jobs, _finish(ctx, actor, jobs), strict=True):
            outcomes[job.plan.host.name] = Outcome(job.plan.host.name, report)
    return [outcomes[n] for n in names]


def _plans(ctx: ServerContext, names: Sequence[str]) -> dict[str, Plan | SoapAttestError]:
    """Plans of many hosts in one read transaction; per-host errors are returned, not raised."""
    out: dict[str, Plan | SoapAttestError] = {}
    try:
        with ctx.store.transaction(readonly=True) as tx:
            for name in names:
                try:
                    out[name] = _plan(tx, name, ctx)
                except (NotFoundError, NoPolicyError, PolicyError) as exc:
                    out[name] = exc
    except DatabaseUnavailableError:
        # The database is away: the whole call fails now. Retrying it once per host
        # would only multiply the connect timeout by the number of hosts.
        raise
    except SoapAttestError:
        # Another database error: fall back to one transaction per host so that each
        # host gets its own error (or plan).
        out = {}
        for name in names:
            try:
                with ctx.store.transaction(readonly=True) as tx:
                    out[name] = _plan(tx, name, ctx)
            except SoapAttestError as exc:
                out[name] = exc
    return out


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

    Two transactions: a read-only one (plan, and an early refusal of an unusable
    nonce before any appraisal work), then one that consumes the nonce and
    stores the report together. Of concurrent calls with the same nonce exactly
    one consumes it; the others are refused and store nothing. A failure leaves
    the nonce unconsumed and nothing stored.
    """
    validate.name(name, "host")
    now = ctx.clock()
    with ctx.store.transaction(readonly=True) as tx:
        plan = _plan(tx, name, ctx)
        if not tx.nonces.usable(name, nonce, CALLER_PURPOSE, now=now):
            raise _nonce_refused(name)
    assert plan.host.identity is not None
    inp = AppraisalInput(
        host=name,
        ak=_ak(plan.host.identity.ak_public),
        nonce=nonce,
        policy=plan.policy,
        whitelists=plan.whitelists,
        now=now,
        previous=plan.host.last_quote,
        qualified_signer=plan.host.identity.qualified_signer,
        log_limits=EventLogLimits(max_log_bytes=ctx.config.event_log_max_bytes),
    )
    result = appraise(evidence, inp)
    job = _Job(
        plan,
        nonce,
        required_selection(plan.policy, plan.whitelists),
        evidence=evidence,
        report=result.report,
        state=result.quote.state if result.quote is not None else None,
        note={"source": "caller"},
    )
    with ctx.store.transaction() as tx:
        if not tx.nonces.consume(name, nonce, CALLER_PURPOSE, now=now):
            raise _nonce_refused(name)  # a concurrent call used it first: roll back
        return _record(tx, ctx, actor, [job])[0]


def _nonce_refused(name: str) -> NonceError:
    return NonceError(
        f"the nonce was not issued for host '{name}', has expired, or was used already"
    )
