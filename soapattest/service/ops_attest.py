# mypy: allow-subclassing-any, allow-untyped-decorators
"""Attestation operations: AttestHost, AttestHosts, PollHosts, IssueNonce, VerifyQuote,
GetTrustReport, ListTrustReports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spyne import rpc
from spyne.model.primitive import DateTime, Unicode, UnsignedInteger32, UnsignedInteger64

from soapattest.errors import InvalidArgumentError
from soapattest.model import TrustStatus
from soapattest.server import attestation, validate
from soapattest.server.attestation import Outcome
from soapattest.service import convert
from soapattest.service import types as t
from soapattest.service.base import actor, page, server, utc
from soapattest.verify.appraise import Evidence
from soapattest.verify.quote import QuoteEvidence

MAX_BULK_HOSTS = 100_000


def _outcomes_out(outcomes: list[Outcome]) -> list[t.HostTrust]:
    return [
        convert.host_trust_out(
            o.host,
            o.report,
            cached=o.cached,
            code=o.error.code if o.error else "",
            message=o.error.message if o.error else "",
        )
        for o in outcomes
    ]


class AttestationOperations:
    """Attestation and trust reports."""

    @rpc(t.req(t.Name), _returns=t.TrustReport, _out_variable_name="report")
    def AttestHost(ctx: Any, host: str) -> t.TrustReport:
        """Attest a host now: fresh nonce, quote, event log (and IMA list), appraisal under
        its policy; the stored report is returned. An unreachable agent gives an UNKNOWN
        report, never a fault.

        Faults: Client.UnknownHost, Client.NoPolicy, Client.InvalidPolicy.
        """
        report = attestation.attest_host(server(ctx), actor(ctx), host)
        return convert.report_out(report)

    @rpc(
        t.many(Unicode(max_len=128), min_occurs=1, max_occurs=MAX_BULK_HOSTS),
        _returns=t.many(t.HostTrust),
        _out_variable_name="result",
    )
    def AttestHosts(ctx: Any, host: Any) -> list[t.HostTrust]:
        """Attest many hosts concurrently; one result per host, in request order (a host
        that cannot be attested carries its fault code instead of a report)."""
        names = convert.names_in(host)
        return _outcomes_out(attestation.attest_hosts(server(ctx), actor(ctx), names))

    @rpc(
        t.many(Unicode(max_len=128), max_occurs=MAX_BULK_HOSTS),
        t.opt(t.Name, doc="Poll every host of this pool (instead of, or besides, hosts)."),
        t.req(UnsignedInteger32, doc="Seconds a report may be old to be served as is."),
        _returns=t.many(t.HostTrust),
        _out_variable_name="result",
    )
    def PollHosts(ctx: Any, host: Any, pool: str | None, max_age: int) -> list[t.HostTrust]:
        """Current trust of many hosts: reports younger than max_age are served (cached=true),
        the others are attested now."""
        names = [str(n) for n in (host or [])]
        if pool:
            validate.name(pool, "pool")
            with server(ctx).store.transaction(readonly=True) as tx:
                names += [n for n in tx.hosts.names(pool) if n not in names]
        if not names:
            raise InvalidArgumentError("no host named and the pool is empty", argument="host")
        return _outcomes_out(attestation.poll_hosts(server(ctx), actor(ctx), names, max_age))

    @rpc(t.req(t.Name), _returns=t.Binary, _out_variable_name="nonce")
    def IssueNonce(ctx: Any, host: str) -> list[bytes]:
        """A single-use nonce bound to the host, valid for the configured time, for callers
        that fetch a quote themselves and then call VerifyQuote."""
        return [attestation.issue_nonce(server(ctx), actor(ctx), host)]

    @rpc(
        t.req(t.Name),
        t.req(t.Binary, doc="The nonce from IssueNonce that the quote carries."),
        t.req(t.Quote),
        t.opt(t.Binary, doc="The host's measured-boot event log."),
        t.opt(t.Binary, doc="The host's IMA list."),
        _returns=t.TrustReport,
        _out_variable_name="report",
    )
    def VerifyQuote(
        ctx: Any, host: str, nonce: Any, quote: Any, event_log: Any, ima_log: Any
    ) -> t.TrustReport:
        """Appraise evidence the caller already holds against the host's AK and policy; the
        report is stored. Faults: Client.InvalidNonce (unknown, other host's, expired or
        used nonce), Client.UnknownHost, Client.NoPolicy."""
        evidence = Evidence(
            quote=QuoteEvidence(
                attest=convert._bytes(quote.attest),
                signature=convert._bytes(quote.signature),
                raw_pcrs=convert.pcr_values_in(quote.pcr),
            ),
            event_log=convert._bytes(event_log) or None,
            ima_log=convert._bytes(ima_log) or None,
        )
        report = attestation.verify_caller_quote(
            server(ctx), actor(ctx), host, nonce=convert._bytes(nonce), evidence=evidence
        )
        return convert.report_out(report)

    @rpc(t.req(UnsignedInteger64), _returns=t.TrustReport, _out_variable_name="report")
    def GetTrustReport(ctx: Any, report_id: int) -> t.TrustReport:
        """One stored report. Faults: Client.ReportNotFound."""
        with server(ctx).store.transaction(readonly=True) as tx:
            return convert.report_out(tx.reports.get(int(report_id)))

    @rpc(
        t.opt(t.Name),
        t.opt(t.TrustStatus),
        t.opt(DateTime, doc="Reports created at or after this time."),
        t.opt(DateTime, doc="Reports created before this time."),
        t.opt(UnsignedInteger32),
        t.opt(UnsignedInteger32),
        _returns=t.ReportList,
        _out_variable_name="reports",
    )
    def ListTrustReports(
        ctx: Any,
        host: str | None,
        status: str | None,
        since: datetime | None,
        until: datetime | None,
        offset: int | None,
        limit: int | None,
    ) -> t.ReportList:
        """History of reports, newest first, filtered and paged."""
        off, lim = page(offset, limit)
        if host:
            validate.name(host, "host")
        with server(ctx).store.transaction(readonly=True) as tx:
            reports, total = tx.reports.list(
                host=host or None,
                status=TrustStatus(status) if status else None,
                since=utc(since),
                until=utc(until),
                offset=off,
                limit=lim,
            )
        return t.ReportList(report=[convert.report_out(r) for r in reports], total=total)
