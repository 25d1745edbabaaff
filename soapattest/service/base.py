# mypy: allow-subclassing-any, allow-untyped-decorators
"""The base of every service class: context access, authorization, fault mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from spyne import ServiceBase

from soapattest.errors import InvalidArgumentError, NotAuthorizedError
from soapattest.security.roles import authorize
from soapattest.security.wssecurity import Principal
from soapattest.security.xmlguard import ENV_OPERATION, ENV_WSSE
from soapattest.server.context import ServerContext
from soapattest.service.faults import to_fault

ANONYMOUS = "anonymous"
MAX_PAGE = 1000


def page(offset: int | None, limit: int | None) -> tuple[int, int]:
    """Validated (offset, limit) of a paged list; limit 1..1000, default 100."""
    off = int(offset or 0)
    lim = int(limit or 100)
    if not 1 <= lim <= MAX_PAGE:
        raise InvalidArgumentError(f"limit must be within 1..{MAX_PAGE}", argument="limit")
    return off, lim


def utc(value: datetime | None) -> datetime | None:
    """A wire dateTime as timezone-aware UTC (a value without zone is taken as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def server(ctx: Any) -> ServerContext:
    """The :class:`ServerContext` of the application serving ``ctx``."""
    return ctx.app.soapattest  # type: ignore[no-any-return]


def actor(ctx: Any) -> str:
    """The authenticated caller's name (set by :func:`authenticate_call`)."""
    principal = ctx.udc
    return principal.name if isinstance(principal, Principal) else ANONYMOUS


def authenticate_call(ctx: Any) -> Principal:
    """Authenticate the caller of ``ctx`` and authorize the operation Spyne dispatched.

    The operation authorized is the one Spyne is about to run
    (``ctx.descriptor.name``), which must be the Body element the XML guard saw
    (never the SOAPAction header). Raises NotAuthorizedError subclasses.
    """
    sctx = server(ctx)
    env = ctx.transport.req_env
    operation = ctx.descriptor.name if ctx.descriptor else None
    if not operation or env.get(ENV_OPERATION) != operation:
        raise NotAuthorizedError("the request was not checked by the XML guard; refused")
    if sctx.authenticator is None:
        raise NotAuthorizedError("authentication is not configured; refused")
    principal = sctx.authenticator.authenticate_request(
        sctx.store,
        env.get(ENV_WSSE),
        now=sctx.clock(),
        secure=env.get("wsgi.url_scheme") == "https",
    )
    try:
        authorize(operation, principal.roles)
    except NotAuthorizedError as exc:
        from soapattest.server.audit import AuditEntry

        AuditEntry(
            sctx,
            principal.name,
            "authorization.denied",
            "operation",
            operation,
            {"roles": list(principal.roles)},
        ).record_alone(f"refused:{exc.code}")
        raise
    ctx.udc = principal
    return principal


class AttestationServiceBase(ServiceBase):
    """Maps every exception of an operation to a SOAP fault (see :mod:`faults`)."""

    @classmethod
    def call_wrapper(cls, ctx: Any) -> Any:
        try:
            authenticate_call(ctx)
            return super().call_wrapper(ctx)
        except Exception as exc:  # noqa: BLE001 - the one place that maps everything
            raise to_fault(exc, ctx.descriptor.name if ctx.descriptor else "?") from None
