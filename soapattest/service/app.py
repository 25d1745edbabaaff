"""The attestation service as a Spyne application and a WSGI callable.

One Spyne :class:`~spyne.Application`, SOAP 1.1 document/literal wrapped, one
target namespace (``urn:soapattest:v1``). Requests are validated against the
schema (lxml) before any operation runs.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import spyne.const
from spyne import Application
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from soapattest.security.roles import check_table_covers
from soapattest.security.xmlguard import XmlGuard
from soapattest.server.context import ServerContext
from soapattest.service.base import AttestationServiceBase
from soapattest.service.direct import DirectDispatch
from soapattest.service.ops_attest import AttestationOperations
from soapattest.service.ops_golden import PolicyOperations, WhitelistOperations
from soapattest.service.ops_hosts import HostOperations
from soapattest.service.ops_trust import TrustOperations
from soapattest.service.types import NS
from soapattest.service.validation import SharedSchema

SERVICE_NAME = "SoapAttest"
OPERATION_GROUPS = (
    HostOperations,
    AttestationOperations,
    WhitelistOperations,
    PolicyOperations,
    TrustOperations,
)


def _operations() -> dict[str, Any]:
    """The @rpc methods of every operation group (one module per group keeps files small)."""
    ops: dict[str, Any] = {}
    for group in OPERATION_GROUPS:
        for name, member in vars(group).items():
            if hasattr(member, "_is_rpc"):
                if name in ops:
                    raise RuntimeError(f"operation {name} is defined twice")
                ops[name] = member
    return ops


@functools.cache
def _service_class() -> type:
    """One service class (one wsdl:service, one portType) holding every operation.

    Built once per process: Spyne binds each @rpc descriptor to the class it is
    first built into, and a second build loses the response types.
    """
    return type(
        SERVICE_NAME,
        (AttestationServiceBase,),
        {"__module__": __name__, "__doc__": "soapattest attestation service.", **_operations()},
    )


# Spyne logs every fault with a traceback at ERROR; ours are mapped and logged once.
logging.getLogger("spyne.application.server").setLevel(logging.CRITICAL)
logging.getLogger("spyne.application").setLevel(logging.CRITICAL)
# Spyne runs a full gc.collect() after a request at most once a second, to close uploaded
# files early; the service takes no file uploads, and on a heap of a few hundred MB a full
# collection costs tens of milliseconds. Python's generational collector does the job.
spyne.const.MIN_GC_INTERVAL = float("inf")


def build_application(ctx: ServerContext | None) -> Application:
    """The Spyne application; ``ctx`` may be None only to generate the WSDL."""
    app = Application(
        [_service_class()],
        tns=NS,
        name=SERVICE_NAME,
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )
    app.soapattest = ctx
    # One error log per schema object in lxml: threads must not share it (validation.py).
    if app.in_protocol.validation_schema is not None:
        app.in_protocol.validation_schema = SharedSchema(app.in_protocol.validation_schema)
    return app


def build_wsgi(ctx: ServerContext) -> Any:
    """The WSGI callable serving SOAP POSTs (behind the XML guard) and ``?wsdl``: the hot
    operations through :class:`DirectDispatch`, the others through Spyne.

    Also checks at start-up that the roles table covers every operation.
    """
    app = build_application(ctx)
    check_table_covers(_operations())
    spyne_wsgi = WsgiApplication(app, max_content_length=ctx.config.max_request_bytes)
    return XmlGuard(
        DirectDispatch(spyne_wsgi, app),
        max_bytes=ctx.config.max_request_bytes,
        service_namespace=NS,
        read_timeout=ctx.config.request_timeout,
    )
