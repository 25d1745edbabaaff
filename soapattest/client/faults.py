"""SOAP faults and transport failures -> the project's exception types, in one place.

A fault carries a stable dotted code and a sentence; :func:`make_error` turns it
into the class :func:`soapattest.errors.error_class_for` names for that code,
with the server's sentence as its message. Data attributes that only the server
knew (``UnknownHostError.name``...) are not on the wire: they are set to their
defaults (``None`` where there is none). A code this version does not know
becomes a plain :class:`SoapAttestError` whose ``code`` is the server's.

Transport failures become :class:`ServerUnreachableError` (no answer) or
:class:`ServerResponseError` (an answer that is not a valid SOAP response); a
request the WSDL cannot express becomes :class:`InvalidArgumentError` before
anything is sent.
"""

from __future__ import annotations

import inspect
import re

import requests
from zeep import exceptions as zx

from soapattest.errors import (
    InvalidArgumentError,
    ServerResponseError,
    ServerUnreachableError,
    SoapAttestError,
    error_class_for,
)

MAX_MESSAGE = 2000
# Spyne refuses a request that fails schema validation with this code.
SCHEMA_VALIDATION_CODE = "Client.SchemaValidationError"
_LXML_PREFIX = re.compile(r"^:\d+:\d+:ERROR:SCHEMASV:\w+:\s*")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


_DEFAULTS: dict[str, tuple[tuple[str, object], ...]] = {}


def _defaults(cls: type[SoapAttestError]) -> tuple[tuple[str, object], ...]:
    """Keyword-only constructor parameters of ``cls`` and its bases, with defaults."""
    key = f"{cls.__module__}.{cls.__qualname__}"
    cached = _DEFAULTS.get(key)
    if cached is not None:
        return cached
    out: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        init = klass.__dict__.get("__init__")
        if init is None or not issubclass(klass, SoapAttestError):
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind is inspect.Parameter.KEYWORD_ONLY:
                out[param.name] = (
                    None if param.default is inspect.Parameter.empty else param.default
                )
    _DEFAULTS[key] = tuple(out.items())
    return _DEFAULTS[key]


def fault_code(raw: str | None) -> str:
    """The dotted code of a SOAP 1.1 faultcode (``soap11env:Client.UnknownHost`` ->
    ``Client.UnknownHost``)."""
    text = (raw or "").strip()
    return text.rsplit(":", 1)[-1] if ":" in text else text or "Server.Internal"


def make_error(code: str, message: str) -> SoapAttestError:
    """The exception for fault ``code`` with the server's ``message`` (not raised)."""
    cls: type[SoapAttestError]
    if code == SCHEMA_VALIDATION_CODE:
        cls = InvalidArgumentError
        message = _LXML_PREFIX.sub("", message)
    else:
        cls = error_class_for(code)
    exc = cls.__new__(cls)
    SoapAttestError.__init__(exc, message[:MAX_MESSAGE])
    for name, default in _defaults(cls):
        setattr(exc, name, default)
    if cls.code != code:
        exc.code = code  # an unknown code (or a Spyne one) stays what the server said
    return exc


def translate(exc: Exception, operation: str, url: str) -> SoapAttestError:
    """The project's exception for a failure of the zeep/requests stack (not raised).

    Raises nothing; an exception it does not recognise becomes a
    :class:`ServerResponseError` naming its type (never a traceback for the user).
    """
    if isinstance(exc, SoapAttestError):
        return exc
    if isinstance(exc, zx.Fault):
        if not exc.code:  # zeep's "Unknown fault": an error answer without a SOAP fault
            return ServerResponseError(
                f"{operation}: the server answered an error without a SOAP fault"
            )
        return make_error(fault_code(exc.code), str(exc.message or "").strip())
    if isinstance(exc, requests.exceptions.SSLError):
        return ServerUnreachableError(
            f"{operation}: TLS failure talking to {url}: {_cause(exc)}", url=url, reason=str(exc)
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return ServerUnreachableError(
            f"{operation}: {url} did not answer in time", url=url, reason=str(exc)
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ServerUnreachableError(
            f"{operation}: cannot reach the server at {url}: {_cause(exc)}",
            url=url,
            reason=str(exc),
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return ServerUnreachableError(
            f"{operation}: request to {url} failed: {_short(exc)}", url=url, reason=str(exc)
        )
    if isinstance(exc, zx.ValidationError):  # raised while building the request
        return InvalidArgumentError(f"{operation}: {exc}", argument=_path(exc))
    if isinstance(exc, zx.TransportError):
        status = int(exc.status_code or 0)
        return ServerResponseError(
            f"{operation}: the server answered HTTP {status} without a SOAP response",
            status=status,
        )
    if isinstance(exc, zx.DTDForbidden | zx.EntitiesForbidden | zx.ExternalReferenceForbidden):
        return ServerResponseError(
            f"{operation}: the server's answer carries a DTD, entities or external "
            "references (refused)"
        )
    if isinstance(exc, zx.Error):
        return ServerResponseError(f"{operation}: invalid answer from the server: {_short(exc)}")
    return ServerResponseError(
        f"{operation}: unexpected failure handling the answer ({type(exc).__name__}: {_short(exc)})"
    )


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cause(exc: BaseException) -> str:
    """The OS-level cause of a connection failure ("Connection refused"), else a short text."""
    text = str(exc)
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip()
    for marker in ("certificate verify failed", "Name or service not known", "timed out"):
        if marker in text:
            return marker
    return _short(exc)


def _path(exc: zx.ValidationError) -> str:
    return ".".join(str(p) for p in (exc.path or []))
