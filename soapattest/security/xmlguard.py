"""XmlGuard: the WSGI middleware that checks every SOAP request before Spyne parses it.

For a request with a body (anything but GET/HEAD, so ``?wsdl`` passes through):

1. Size: ``Content-Length`` above ``max_bytes`` is refused before reading; a body
   without length (chunked, when the server marks ``wsgi.input_terminated``) is
   read with the same hard cap; anything else without a length is refused.
2. Encoding: UTF-8 only (a ``charset`` other than UTF-8 in Content-Type, a
   UTF-16/32 byte order mark or another declared encoding is refused), so the
   bytes Spyne decodes are the bytes checked here.
3. No DTD: a DOCTYPE in the prolog is refused before parsing (no entity can be
   declared, so none can be expanded - XXE, billion laughs and quadratic
   blow-up are impossible); the document is then parsed once with a hardened
   lxml parser (no DTD loading, no entity resolution, no network, no huge
   trees). Processing instructions are refused anywhere; comments are allowed
   (Spyne drops them) and ignored by the checks below.
4. Depth: elements may nest at most ``max_depth`` levels.
5. Envelope: the root is a SOAP 1.1 ``Envelope`` whose element children are an
   optional ``Header`` then exactly one ``Body``; the Body has exactly one element
   child and no text.
6. Headers: a Header child addressed to us (no ``soap:actor`` or the ``next``
   actor) with ``soap:mustUnderstand="1"`` must be in ``allowed_headers``; at most
   one ``wsse:Security`` header is addressed to us.

Refusals are SOAP 1.1 faults (HTTP 500, text/xml) with the codes of
:class:`~soapattest.errors.XmlRequestError` and ``Client.RequestTooLarge``.
On success the WSGI environ carries, for the application behind:

- ``soapattest.operation``: the local name of the Body child when it is in
  ``service_namespace`` (or when that is None); else its Clark name
  ``{ns}local``, which no authorization entry matches. Spyne dispatches on this
  element, never on SOAPAction, so authorize on this value only.
- ``soapattest.wsse``: our ``wsse:Security`` element or None.
- ``soapattest.envelope``: the parsed root element (read-only; a Spyne protocol
  subclass may use it instead of parsing ``wsgi.input`` again).
- ``soapattest.payload``: the Body's one element child (the operation element).
- ``wsgi.input`` / ``CONTENT_LENGTH``: the original bytes and their length.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from soapattest.errors import (
    InvalidEnvelopeError,
    MustUnderstandError,
    RequestTimeoutError,
    RequestTooLargeError,
    SoapAttestError,
    XmlForbiddenError,
    XmlTooDeepError,
)
from soapattest.security.wssecurity import SECURITY_TAG
from soapattest.security.xmlparse import hardened_parser

log = logging.getLogger("soapattest.security.xml")

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
ENV_OPERATION = "soapattest.operation"
ENV_WSSE = "soapattest.wsse"
ENV_ENVELOPE = "soapattest.envelope"
ENV_PAYLOAD = "soapattest.payload"
ENV_FAULT = "soapattest.fault"
DEFAULT_ALLOWED_HEADERS = frozenset({SECURITY_TAG})

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_ENVELOPE = f"{{{SOAP11_ENV}}}Envelope"
_HEADER = f"{{{SOAP11_ENV}}}Header"
_BODY = f"{{{SOAP11_ENV}}}Body"
_MUST_UNDERSTAND = f"{{{SOAP11_ENV}}}mustUnderstand"
_ACTOR = f"{{{SOAP11_ENV}}}actor"
_BOMS = (b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_UTF8_BOM = b"\xef\xbb\xbf"
_ENCODING_DECL = re.compile(rb"^<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)
_UTF8_NAMES = {"utf-8", "utf8"}
_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soap:Envelope xmlns:soap="{SOAP11_ENV}"><soap:Body><soap:Fault>'
    "<faultcode>soap:{code}</faultcode><faultstring>{message}</faultstring>"
    "</soap:Fault></soap:Body></soap:Envelope>"
)


def fault_body(code: str, message: str) -> bytes:
    """A SOAP 1.1 Fault envelope (UTF-8) with ``code`` and ``message``."""
    return _FAULT.format(code=escape(code), message=escape(message)).encode("utf-8")


def _parser() -> etree.XMLParser:
    return hardened_parser(keep_processing_instructions=True)


def _prolog_has_dtd(data: bytes) -> bool:
    """True when a ``<!`` markup other than a comment precedes the root element (the only
    place a DOCTYPE can be). Malformed prologs return False and fail in the parser."""
    i = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    end = len(data)
    while i < end:
        while i < end and data[i] in b" \t\r\n":
            i += 1
        if data.startswith(b"<?", i):
            j = data.find(b"?>", i + 2)
            if j < 0:
                return False
            i = j + 2
        elif data.startswith(b"<!--", i):
            j = data.find(b"-->", i + 4)
            if j < 0:
                return False
            i = j + 3
        else:
            return data.startswith(b"<!", i)
    return False


_HAS_PI = etree.XPath("boolean(//processing-instruction())")  # prolog, body and epilog


def _check_encoding(data: bytes, content_type: str) -> None:
    m = _CHARSET.search(content_type)
    if m is not None and m.group(1).lower() not in _UTF8_NAMES:
        raise XmlForbiddenError(f"charset {m.group(1)[:40]!r} refused: only UTF-8 is accepted",
                                construct="encoding")
    if data.startswith(_BOMS):
        raise XmlForbiddenError("UTF-16/UTF-32 documents are refused: only UTF-8 is accepted",
                                construct="encoding")
    body = data[len(_UTF8_BOM):] if data.startswith(_UTF8_BOM) else data
    decl = _ENCODING_DECL.match(body)
    if decl is not None and decl.group(1).decode("ascii").lower() not in _UTF8_NAMES:
        raise XmlForbiddenError(
            f"encoding {decl.group(1).decode('ascii')[:40]!r} refused: only UTF-8 is accepted",
            construct="encoding",
        )
    if not body.lstrip(b" \t\r\n").startswith(b"<"):
        raise InvalidEnvelopeError("the request body is not an XML document")


@functools.lru_cache(maxsize=16)
def _deeper_than(limit: int) -> etree.XPath:
    # true when an element exists at depth limit + 1 (the root element is depth 1);
    # evaluated by libxml2, ~100x faster than walking the tree in Python
    return etree.XPath("boolean(" + "/*" * (limit + 1) + ")")


def _depth_ok(root: etree._Element, limit: int) -> bool:
    return not _deeper_than(limit)(root)


def parse_request(data: bytes, *, max_depth: int, content_type: str = "") -> etree._Element:
    """Steps 2-4: the root element of ``data``. Raises XmlForbiddenError,
    XmlTooDeepError or InvalidEnvelopeError."""
    _check_encoding(data, content_type)
    if _prolog_has_dtd(data):
        raise XmlForbiddenError("DOCTYPE declarations (DTDs, entities) are refused",
                                construct="DOCTYPE")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        text = str(exc)
        if "Excessive depth" in text:
            raise XmlTooDeepError(f"elements nest deeper than {max_depth} levels",
                                  limit=max_depth) from None
        if "Entity" in text or "entity" in text:
            raise XmlForbiddenError("entity references are refused", construct="entity") from None
        raise InvalidEnvelopeError(f"the request is not well-formed XML: {text[:200]}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:  # defence in depth
        raise XmlForbiddenError("DOCTYPE declarations are refused", construct="DOCTYPE")
    if (tree.docinfo.encoding or "UTF-8").lower() not in _UTF8_NAMES:
        raise XmlForbiddenError("only UTF-8 is accepted", construct="encoding")
    if _HAS_PI(root):
        raise XmlForbiddenError("processing instructions are refused",
                                construct="processing-instruction")
    if any(True for _ in root.iter(etree.Entity)):
        raise XmlForbiddenError("entity references are refused", construct="entity")
    if not _depth_ok(root, max_depth):
        raise XmlTooDeepError(f"elements nest deeper than {max_depth} levels", limit=max_depth)
    return root


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str)]


def _for_us(header: etree._Element) -> bool:
    actor = header.get(_ACTOR)
    return actor is None or actor.strip() in ("", ACTOR_NEXT)


def check_envelope(
    root: etree._Element, allowed_headers: Collection[str]
) -> tuple[etree._Element, etree._Element | None]:
    """Steps 5-6: ``(body child, our wsse:Security header or None)``.
    Raises InvalidEnvelopeError or MustUnderstandError."""
    if root.tag != _ENVELOPE:
        ns = etree.QName(root).namespace if isinstance(root.tag, str) else None
        what = "a SOAP 1.2 envelope" if ns == "http://www.w3.org/2003/05/soap-envelope" else (
            f"<{etree.QName(root).localname[:40]}>")
        raise InvalidEnvelopeError(f"expected a SOAP 1.1 Envelope, got {what}")
    children = _elements(root)
    names = [c.tag for c in children]
    if names not in ([_BODY], [_HEADER, _BODY]):
        raise InvalidEnvelopeError(
            "the Envelope must contain an optional Header followed by exactly one Body"
        )
    if (root.text or "").strip() or any((c.tail or "").strip() for c in root):
        raise InvalidEnvelopeError("text is not allowed between the Envelope's elements")
    body = children[-1]
    payload = _elements(body)
    if len(payload) != 1:
        raise InvalidEnvelopeError(f"the Body must hold exactly one element, not {len(payload)}")
    if (body.text or "").strip() or any((c.tail or "").strip() for c in body):
        raise InvalidEnvelopeError("text is not allowed in the Body beside its element")
    security = None
    if len(children) == 2:
        for header in _elements(children[0]):
            if not _for_us(header):
                continue
            flag = header.get(_MUST_UNDERSTAND)
            if flag is not None and flag.strip() not in ("0", "1", "true", "false"):
                raise InvalidEnvelopeError("soap:mustUnderstand must be 0 or 1")
            if flag is not None and flag.strip() in ("1", "true") and (
                header.tag not in allowed_headers
            ):
                raise MustUnderstandError(
                    f"header {header.tag[:200]} must be understood but is not processed here",
                    header=str(header.tag),
                )
            if header.tag == SECURITY_TAG:
                if security is not None:
                    raise InvalidEnvelopeError("more than one wsse:Security header for us")
                security = header
    return payload[0], security


class XmlGuard:
    """WSGI middleware in front of the Spyne application (see the module docstring).

    ``max_bytes``: largest body accepted; ``max_depth``: deepest nesting
    (4..255, libxml2 refuses 256 by itself); ``allowed_headers``: Clark names of
    headers we process (default: ``wsse:Security``); ``service_namespace``: the
    target namespace of the service's operations.
    """

    def __init__(
        self,
        app: WsgiApp,
        *,
        max_bytes: int,
        max_depth: int = 64,
        allowed_headers: Collection[str] = DEFAULT_ALLOWED_HEADERS,
        service_namespace: str | None = None,
        read_timeout: float = 15.0,
    ) -> None:
        if max_bytes < 256 or not 4 <= max_depth <= 255 or not 0 < read_timeout <= 3600:
            raise ValueError("max_bytes >= 256, max_depth within 4..255, read_timeout > 0")
        self.app = app
        self.read_timeout = read_timeout
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.allowed_headers = frozenset(allowed_headers)
        self.service_namespace = service_namespace

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD"):
            return self.app(environ, start_response)
        try:
            data = self._read(environ)
            root = parse_request(data, max_depth=self.max_depth,
                                 content_type=environ.get("CONTENT_TYPE", ""))
            payload, security = check_envelope(root, self.allowed_headers)
        except SoapAttestError as exc:
            return self._refuse(environ, start_response, exc)
        qname = etree.QName(payload)
        if self.service_namespace is None or qname.namespace == self.service_namespace:
            environ[ENV_OPERATION] = qname.localname
        else:
            environ[ENV_OPERATION] = qname.text
        environ[ENV_WSSE] = security
        environ[ENV_ENVELOPE] = root
        environ[ENV_PAYLOAD] = payload
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

    def _read(self, environ: dict[str, Any]) -> bytes:
        """The body, read within ``read_timeout`` in total when the server exposes its socket
        (gunicorn: ``gunicorn.socket``): a client dripping a body cannot hold a thread."""
        sock = environ.get("gunicorn.socket")
        deadline = time.monotonic() + self.read_timeout
        try:
            return self._read_body(environ, sock, deadline)
        except (TimeoutError, OSError) as exc:
            raise RequestTimeoutError(
                f"the request body did not arrive within {self.read_timeout:g} s",
                limit=self.read_timeout,
            ) from exc
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.settimeout(None)

    def _read_body(self, environ: dict[str, Any], sock: Any, deadline: float) -> bytes:
        stream = environ["wsgi.input"]
        length_text = (environ.get("CONTENT_LENGTH") or "").strip()
        if length_text:
            if not length_text.isdigit():
                raise InvalidEnvelopeError("the Content-Length header is not a number")
            length = int(length_text)
            if length > self.max_bytes:
                raise RequestTooLargeError(
                    f"request of {length} bytes exceeds the limit of {self.max_bytes} bytes",
                    size=length, limit=self.max_bytes,
                )
            data = _read_exactly(stream, length, sock, deadline)
            if len(data) != length:
                raise InvalidEnvelopeError("the request body is shorter than its Content-Length")
            return data
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not (environ.get("wsgi.input_terminated") or chunked):
            raise InvalidEnvelopeError("a Content-Length (or a chunked body) is required")
        data = _read_exactly(stream, self.max_bytes + 1, sock, deadline)
        if len(data) > self.max_bytes:
            raise RequestTooLargeError(
                f"chunked request exceeds the limit of {self.max_bytes} bytes",
                size=None, limit=self.max_bytes,
            )
        return data

    def _refuse(
        self, environ: dict[str, Any], start_response: StartResponse, exc: SoapAttestError
    ) -> list[bytes]:
        environ[ENV_FAULT] = exc.code
        log.info("request refused from %s: %s: %s", environ.get("REMOTE_ADDR", "?"), exc.code,
                 exc.message)
        body = fault_body(exc.code, exc.message)
        start_response("500 Internal Server Error", [
            ("Content-Type", "text/xml; charset=utf-8"),
            ("Content-Length", str(len(body))),
            # The rest of a refused body is never read: do not keep the connection.
            ("Connection", "close"),
        ])
        return [body]


def _read_exactly(stream: Any, limit: int, sock: Any = None, deadline: float = 0.0) -> bytes:
    """Read until EOF or ``limit`` bytes, in bounded chunks; with ``sock``, every read
    must complete before ``deadline`` (raises TimeoutError)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        if sock is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request body deadline passed")
            sock.settimeout(remaining)
        chunk = stream.read(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
