# mypy: allow-subclassing-any, allow-untyped-decorators
"""Host operations: RegisterHost, GetHost, ListHosts, UpdateHost, DeleteHost, ReenrollHost,
RetrieveQuote, GetMeasurements."""

from __future__ import annotations

from typing import Any

from spyne import rpc
from spyne.model.primitive import Boolean, Unicode, UnsignedInteger32

from soapattest.errors import InvalidArgumentError, ReportNotFoundError
from soapattest.server import hosts as host_uc
from soapattest.server import registration, validate
from soapattest.server.attestation import NONCE_BYTES
from soapattest.service import convert
from soapattest.service import types as t
from soapattest.service.base import actor, page, server
from soapattest.tpm.eventlog import decode_event, parse_event_log
from soapattest.tpm.public import parse_public
from soapattest.verify.eventlog import appraise_event_log
from soapattest.verify.quote import QuoteEvidence, QuoteExpectations, verify_quote


class HostOperations:
    """Hosts and their measurements."""

    @rpc(
        t.req(t.Name, doc="Unique host name."),
        t.req(t.Url),
        t.opt(t.Name, doc="Pool the host belongs to."),
        t.opt(t.Name, doc="Policy of this host (else its pool's)."),
        t.many(t.Label, max_occurs=32),
        t.opt(t.Text),
        t.opt(
            Unicode(max_len=95),
            doc="SHA-256 fingerprint (hex) of the agent's TLS certificate to pin; default: "
            "verified by [agents] agent_ca, else pinned on first use.",
        ),
        _returns=t.HostInfo,
        _out_variable_name="host",
    )
    def RegisterHost(
        ctx: Any,
        name: str,
        agent_url: str,
        pool: str | None,
        policy: str | None,
        labels: Any,
        description: str | None,
        agent_tls_fingerprint: str | None,
    ) -> t.HostInfo:
        """Register a host: validate its EK certificate against the configured roots and
        prove its AK by credential activation before trusting it.

        Faults: Client.AlreadyExists, Client.InvalidIdentity, Client.PolicyNotFound,
        Client.InvalidArgument, Server.AgentUnreachable, Server.AgentBadResponse.
        """
        host = registration.register_host(
            server(ctx),
            actor(ctx),
            name=name,
            agent_url=agent_url,
            pool=pool or "",
            policy=policy or "",
            labels=convert.labels_in(labels),
            description=description or "",
            agent_tls_fingerprint=agent_tls_fingerprint or "",
        )
        return convert.host_out(host, host.policy or None)

    @rpc(t.req(t.Name), _returns=t.HostInfo, _out_variable_name="host")
    def GetHost(ctx: Any, name: str) -> t.HostInfo:
        """One host. Faults: Client.UnknownHost."""
        validate.name(name, "name")
        with server(ctx).store.transaction(readonly=True) as tx:
            return convert.host_out(tx.hosts.get(name), tx.hosts.effective_policy(name))

    @rpc(
        t.opt(t.Name, doc="Only hosts of this pool."),
        t.opt(UnsignedInteger32, doc="Skip this many hosts."),
        t.opt(UnsignedInteger32, doc="At most this many hosts (1..1000, default 100)."),
        _returns=t.HostList,
        _out_variable_name="hosts",
    )
    def ListHosts(ctx: Any, pool: str | None, offset: int | None, limit: int | None) -> t.HostList:
        """A page of hosts, by name."""
        off, lim = page(offset, limit)
        if pool:
            validate.name(pool, "pool")
        with server(ctx).store.transaction(readonly=True) as tx:
            hosts, total = tx.hosts.list(pool=pool or None, offset=off, limit=lim)
            out = [convert.host_out(h, tx.hosts.effective_policy(h.name)) for h in hosts]
        return t.HostList(host=out, total=total)

    @rpc(
        t.req(t.Name),
        t.opt(t.Url),
        t.opt(Unicode(max_len=63), doc="New pool ('' removes it)."),
        t.many(t.Label, max_occurs=32),
        t.opt(Boolean, doc="Replace the labels with the given ones (else labels are kept)."),
        t.opt(t.Text),
        _returns=t.HostInfo,
        _out_variable_name="host",
    )
    def UpdateHost(
        ctx: Any,
        name: str,
        agent_url: str | None,
        pool: str | None,
        labels: Any,
        replace_labels: bool | None,
        description: str | None,
    ) -> t.HostInfo:
        """Change a host's agent URL, pool, labels or description (never its TPM identity).

        Faults: Client.UnknownHost, Client.InvalidArgument.
        """
        new_labels = convert.labels_in(labels) if replace_labels else None
        host = host_uc.update_host(
            server(ctx),
            actor(ctx),
            name,
            agent_url=agent_url,
            pool=pool,
            labels=new_labels,
            description=description,
        )
        return convert.host_out(host)

    @rpc(t.req(t.Name), _returns=Boolean, _out_variable_name="deleted")
    def DeleteHost(ctx: Any, name: str) -> bool:
        """Delete a host (its reports and identity history stay). Faults: Client.UnknownHost."""
        host_uc.delete_host(server(ctx), actor(ctx), name)
        return True

    @rpc(t.req(t.Name), _returns=t.HostInfo, _out_variable_name="host")
    def ReenrollHost(ctx: Any, name: str) -> t.HostInfo:
        """Replace a host's TPM identity after a TPM change: every registration check runs
        again; the previous identity stays in the history. Audited."""
        host = registration.reenroll_host(server(ctx), actor(ctx), name)
        return convert.host_out(host)

    @rpc(
        t.req(t.Name),
        t.many(t.PcrSelection, min_occurs=1, max_occurs=5),
        t.opt(Boolean, doc="Also fetch the host's event log."),
        _returns=t.RetrievedQuote,
        _out_variable_name="retrieved",
    )
    def RetrieveQuote(
        ctx: Any, host: str, selection: Any, with_event_log: bool | None
    ) -> t.RetrievedQuote:
        """A fresh quote over the selection with a server nonce, verified with the host's AK
        (no policy is applied and no report is stored).

        Faults: Client.UnknownHost, Client.InvalidQuote, Server.AgentUnreachable.
        """
        sctx = server(ctx)
        validate.name(host, "host")
        sel = convert.selection_in(selection)
        with sctx.store.transaction(readonly=True) as tx:
            h = tx.hosts.get(host)
        if h.identity is None:
            raise InvalidArgumentError(f"host '{host}' has no identity", argument="host")
        nonce = sctx.random_bytes(NONCE_BYTES)
        pin = h.identity.agent_tls_pin or None
        q = sctx.agents.quote(h.agent_url, nonce, sel, pin=pin)
        verified = verify_quote(
            QuoteEvidence(q.attest, q.signature, q.raw_pcrs),
            parse_public(h.identity.ak_public),
            QuoteExpectations(
                nonce=nonce, required=sel, qualified_signer=h.identity.qualified_signer
            ),
        )
        log = sctx.agents.event_log(h.agent_url, pin=pin) if with_event_log else None
        return t.RetrievedQuote(
            nonce=[nonce],
            quote=t.Quote(
                attest=[q.attest],
                signature=[q.signature],
                pcr=convert.pcr_values_out(verified.pcrs),
            ),
            event_log=[log] if log else None,
        )

    @rpc(t.req(t.Name), _returns=t.Measurements, _out_variable_name="measurements")
    def GetMeasurements(ctx: Any, host: str) -> t.Measurements:
        """The verified PCR values of the host's newest report and its decoded event log
        (events marked trusted when the quote vouches for their PCR).

        Faults: Client.UnknownHost, Client.ReportNotFound.
        """
        sctx = server(ctx)
        validate.name(host, "host")
        with sctx.store.transaction(readonly=True) as tx:
            tx.hosts.get(host)
            report = tx.reports.latest(host)
            if report is None:
                raise ReportNotFoundError(f"host '{host}' has no report yet", report_id=0)
            raw = tx.evidence.get(report.event_log_sha256) if report.event_log_sha256 else None
        events: list[t.Event] = []
        if raw is not None:
            log = parse_event_log(raw)
            trusted: dict[str, frozenset[int]] = {}
            if report.pcrs:
                trusted = _trusted_pcrs(raw, report)
            for ev in log.events:
                events.append(
                    t.Event(
                        index=ev.index,
                        pcr=ev.pcr & 0xFFFFFFFF,
                        type=ev.type_name,
                        digest=[
                            t.PcrValue(bank=b, index=ev.pcr & 0x1F, value=[d])
                            for b, d in ev.digests.items()
                        ],
                        summary=decode_event(ev).summary[:500],
                        trusted=any(ev.pcr in pcrs for pcrs in trusted.values()),
                    )
                )
        return t.Measurements(
            host=host,
            report_id=report.report_id,
            pcr=convert.pcr_values_out({b: dict(v) for b, v in report.pcrs.items()}),
            event=events,
        )


def _trusted_pcrs(raw: bytes, report: Any) -> dict[str, frozenset[int]]:
    """PCRs whose events replay to the report's verified values."""
    return appraise_event_log(raw, report.pcrs, list(report.pcrs)).trusted_pcrs
