"""Direct dispatch: the hot operations served without Spyne's generic XML protocol.

:class:`DirectDispatch` sits between the XML guard and Spyne's WSGI
application. For an operation in its table it does what Spyne would do,
with the same pieces and in the same order, but with the compiled
:class:`~soapattest.service.codec.Codec` instead of Spyne's (de)serializer:

1. validate the Body's operation element against the service's XML Schema
   (the very schema object Spyne built for its own validation): a failure is
   ``Client.SchemaValidationError`` before anything else runs;
2. read the arguments (codec);
3. run the operation through the service class's ``call_wrapper`` - the same
   authentication, authorization and fault mapping as every other operation;
4. write the response envelope (codec), or the fault.

Every other operation, and ``?wsdl``, goes to Spyne unchanged. The WSDL, the
operation functions and the faults are shared, so both paths are the same
contract; differential tests check that they also emit the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree
from spyne import Application, Fault

from soapattest.security.xmlguard import ENV_FAULT, ENV_OPERATION, ENV_PAYLOAD, StartResponse
from soapattest.service.codec import Codec, UnsupportedType, fault_envelope
from soapattest.service.faults import to_fault

log = logging.getLogger("soapattest.service")

# Operations whose cost matters: attestation and trust queries.
HOT_OPERATIONS = frozenset(
    {"AttestHost", "AttestHosts", "PollHosts", "VerifyQuote", "IssueNonce", "GetTrustReport"}
)
_HEADERS_OK = "200 OK"
_HEADERS_FAULT = "500 Internal Server Error"
_CONTENT_TYPE = ("Content-Type", "text/xml; charset=utf-8")
SCHEMA_FAULT = "Client.SchemaValidationError"


@dataclass(frozen=True, slots=True)
class _Operation:
    name: str
    descriptor: Any
    service_class: Any


class _Transport:
    __slots__ = ("req_env",)

    def __init__(self, environ: dict[str, Any]) -> None:
        self.req_env = environ


class CallContext:
    """The part of Spyne's MethodContext the service's operations and ``call_wrapper`` use."""

    __slots__ = ("app", "descriptor", "function", "in_object", "transport", "udc")

    def __init__(self, app: Application, op: _Operation, environ: dict[str, Any]) -> None:
        self.app = app
        self.descriptor = op.descriptor
        self.function = op.descriptor.function
        self.in_object: list[Any] = []
        self.transport = _Transport(environ)
        self.udc: Any = None


class DirectDispatch:
    """WSGI application: hot operations directly, everything else through ``fallback``."""

    def __init__(
        self,
        fallback: Any,
        app: Application,
        operations: Collection[str] = HOT_OPERATIONS,
    ) -> None:
        self.fallback = fallback
        self.app = app
        self.codec = Codec()
        schema = app.in_protocol.validation_schema
        if schema is None:
            raise ValueError("direct dispatch needs the application's schema validation")
        self.schema = schema  # a SharedSchema (see validation.py)
        self.operations: dict[str, _Operation] = {}
        method_map = app.interface.service_method_map
        for name in operations:
            (descriptor, *_) = method_map[f"{{{app.tns}}}{name}"]
            try:
                self.codec.check_readable(descriptor.in_message)
                self.codec.fields(descriptor.out_message)
            except UnsupportedType as exc:
                raise ValueError(f"operation {name} cannot be served directly: {exc}") from exc
            self.operations[name] = _Operation(name, descriptor, descriptor.service_class)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        op = self.operations.get(environ.get(ENV_OPERATION, ""))
        payload = environ.get(ENV_PAYLOAD)  # the operation element the XML guard checked
        if op is None or payload is None or environ.get("REQUEST_METHOD") != "POST":
            answer: Iterable[bytes] = self.fallback(environ, start_response)
            return answer
        status, body = self._serve(op, payload, environ)
        start_response(status, [_CONTENT_TYPE, ("Content-Length", str(len(body)))])
        return [body]

    def _serve(
        self, op: _Operation, payload: etree._Element, environ: dict[str, Any]
    ) -> tuple[str, bytes]:
        if not self.schema.validate(payload):
            return self._fault(environ, SCHEMA_FAULT, _schema_error(self.schema.error_log))
        ctx = CallContext(self.app, op, environ)
        try:
            ctx.in_object = self.codec.read_args(payload, op.descriptor.in_message)
            result = op.service_class.call_wrapper(ctx)
            return _HEADERS_OK, self.codec.envelope(op.descriptor.out_message, result)
        except Fault as fault:
            return self._fault(environ, str(fault.faultcode), str(fault.faultstring))
        except Exception as exc:  # noqa: BLE001 - reading/writing failed: a fault, as in Spyne
            mapped = to_fault(exc, op.name)
            return self._fault(environ, str(mapped.faultcode), str(mapped.faultstring))

    @staticmethod
    def _fault(environ: dict[str, Any], code: str, message: str) -> tuple[str, bytes]:
        environ[ENV_FAULT] = code
        return _HEADERS_FAULT, fault_envelope(code, message)


def _schema_error(error_log: Any) -> str:
    """libxml2's last schema error in Spyne's words (without the parser's file name)."""
    e = error_log.last_error
    if e is None:
        return "the request does not match the service's schema"
    return f":{e.line}:{e.column}:{e.level_name}:{e.domain_name}:{e.type_name}: {e.message}"
