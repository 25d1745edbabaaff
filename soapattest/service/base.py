# mypy: allow-subclassing-any, allow-untyped-decorators
"""The base of every service class: context access, authorization, fault mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from spyne import ServiceBase

from soapattest.errors import InvalidArgumentError
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
    """The authenticated caller's name (set by the authentication hook)."""
    return str(getattr(ctx.udc, "principal", None) or ANONYMOUS) if ctx.udc else ANONYMOUS


class AttestationServiceBase(ServiceBase):
    """Maps every exception of an operation to a SOAP fault (see :mod:`faults`)."""

    @classmethod
    def call_wrapper(cls, ctx: Any) -> Any:
        try:
            return super().call_wrapper(ctx)
        except Exception as exc:  # noqa: BLE001 - the one place that maps everything
            raise to_fault(exc, ctx.descriptor.name if ctx.descriptor else "?") from None
