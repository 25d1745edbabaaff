# mypy: allow-subclassing-any, allow-untyped-decorators
"""Trust consumers' operations: ListTrustedHosts, CheckPlacement, GetTrustAssertion,
GetSigningCertificate, ListAuditRecords."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spyne import rpc
from spyne.model.primitive import DateTime, Unicode, UnsignedInteger32

from soapattest.server import trust, validate
from soapattest.service import convert
from soapattest.service import types as t
from soapattest.service.base import actor, page, server, utc


class TrustOperations:
    """Questions of trust consumers (schedulers, VM managers) and signed assertions."""

    @rpc(
        t.req(t.Name),
        t.opt(t.WorkloadRequirements),
        _returns=t.many(t.PlacementDecision),
        _out_variable_name="decision",
    )
    def ListTrustedHosts(ctx: Any, pool: str, requirements: Any) -> list[t.PlacementDecision]:
        """Every host of the pool with allow/deny under the requirements (allowed first)."""
        decisions = trust.list_trusted_hosts(
            server(ctx), pool, convert.requirements_in(requirements)
        )
        return [convert.decision_out(d) for d in decisions]

    @rpc(
        t.req(t.Name),
        t.opt(t.WorkloadRequirements),
        _returns=t.PlacementDecision,
        _out_variable_name="decision",
    )
    def CheckPlacement(ctx: Any, host: str, requirements: Any) -> t.PlacementDecision:
        """May a workload with these requirements run on this host now? Allow or deny with
        every reason. Faults: Client.UnknownHost."""
        decision = trust.check_placement(
            server(ctx), actor(ctx), host, convert.requirements_in(requirements)
        )
        return convert.decision_out(decision)

    @rpc(
        t.req(t.Name),
        t.opt(UnsignedInteger32, doc="Refuse if the newest report is older (seconds)."),
        _returns=t.TrustAssertion,
        _out_variable_name="assertion",
    )
    def GetTrustAssertion(ctx: Any, host: str, max_age: int | None) -> t.TrustAssertion:
        """A SAML 2.0 assertion about the host's newest report, signed with the server's key
        (verify it with GetSigningCertificate). Faults: Client.UnknownHost,
        Client.InvalidArgument (never attested, or older than max_age)."""
        xml, report = trust.trust_assertion(server(ctx), actor(ctx), host, max_age=max_age)
        return t.TrustAssertion(
            assertion=xml.decode("utf-8"), report_id=report.report_id, status=report.status.value
        )

    @rpc(_returns=Unicode, _out_variable_name="certificate")
    def GetSigningCertificate(ctx: Any) -> str:
        """The PEM certificate of the key that signs trust assertions."""
        return server(ctx).signing.cert_pem.decode("ascii")

    @rpc(
        t.opt(Unicode(max_len=255)),
        t.opt(Unicode(max_len=64)),
        t.opt(Unicode(max_len=255)),
        t.opt(DateTime),
        t.opt(DateTime),
        t.opt(UnsignedInteger32),
        t.opt(UnsignedInteger32),
        _returns=t.AuditList,
        _out_variable_name="audit",
    )
    def ListAuditRecords(
        ctx: Any,
        actor_name: str | None,
        action: str | None,
        target: str | None,
        since: datetime | None,
        until: datetime | None,
        offset: int | None,
        limit: int | None,
    ) -> t.AuditList:
        """The append-only audit log, newest first, filtered and paged."""
        off, lim = page(offset, limit)
        for value, what in ((actor_name, "actor"), (action, "action"), (target, "target")):
            if value:
                validate.text(value, what, 255)
        with server(ctx).store.transaction(readonly=True) as tx:
            records, total = tx.audit.list(
                actor=actor_name or None,
                action=action or None,
                target=target or None,
                since=utc(since),
                until=utc(until),
                offset=off,
                limit=lim,
            )
        return t.AuditList(record=[convert.audit_out(a) for a in records], total=total)
