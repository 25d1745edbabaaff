"""A small threaded HTTP server for a WSGI application (stdlib only).

Kept apart from the SOAP code. TLS: ``make_server(..., ssl_context=ctx)``
wraps each accepted connection; the handshake runs in the connection's own
thread under the connection timeout, so a slow or hostile client cannot stall
the accept loop. With a context that requires client certificates, only
clients holding a certificate of the configured CA get past the handshake;
:class:`ClientCertGuard` can further restrict their subject CNs.

:class:`RequestGuard` is the WSGI middleware in front of Spyne: it caps the
request size, refuses DTDs, and logs one line per request (operation, peer,
outcome, duration).
"""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from xml.sax.saxutils import escape

from soapattest.security.tls import peer_common_names

log = logging.getLogger("soapattest.agent.http")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/">'
    "<soap11env:Body><soap11env:Fault>"
    "<faultcode>soap11env:{code}</faultcode><faultstring>{message}</faultstring>"
    "</soap11env:Fault></soap11env:Body></soap11env:Envelope>"
)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server with one thread per connection.

    ``server_close()`` waits for the requests in flight (``block_on_close``);
    each connection has a socket timeout (:class:`QuietHandler`), so a client
    that stalls cannot hold a thread, or the shutdown, for long.
    """

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 64
    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        """Accept; with TLS, wrap without handshaking (the handler thread does it)."""
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log failed connections in one line (TLS handshake refusals, resets)."""
        exc = sys.exc_info()[1]
        peer = client_address[0] if isinstance(client_address, tuple) else client_address
        if isinstance(exc, OSError):  # ssl.SSLError, resets, timeouts
            log.info("connection from %s failed: %s", peer, exc)
        else:
            log.error("error serving %s", peer, exc_info=exc)


class ThreadingWSGIServer6(ThreadingWSGIServer):
    """The same on IPv6."""

    address_family = socket.AF_INET6


class QuietHandler(WSGIRequestHandler):
    """Request handler that leaves logging to :class:`RequestGuard`.

    ``timeout``: seconds a connection may stay silent (reading the request).
    """

    timeout = 30
    disable_nagle_algorithm = True  # status line, headers and body leave without delay

    def setup(self) -> None:
        """With TLS: handshake now (under ``timeout``); a failure ends the connection."""
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def get_environ(self) -> dict[str, Any]:
        """The WSGI environ; with TLS also ``HTTPS=on`` and ``soapattest.client_cn`` (the
        subject CNs of a verified client certificate, empty without one)."""
        environ: dict[str, Any] = super().get_environ()
        if isinstance(self.request, ssl.SSLSocket):
            environ["HTTPS"] = "on"
            environ["soapattest.client_cn"] = peer_common_names(self.request.getpeercert())
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.address_string(), *args)


def fault_response(
    start_response: StartResponse, status: str, code: str, message: str
) -> list[bytes]:
    """Answer with a SOAP 1.1 Fault (``code`` e.g. ``Client.RequestTooLarge``)."""
    body = _FAULT.format(code=escape(code), message=escape(message)).encode()
    start_response(status, [("Content-Type", "text/xml; charset=utf-8"),
                            ("Content-Length", str(len(body)))])
    return [body]


class RequestGuard:
    """WSGI middleware: size cap, no DTD, one log line per request.

    ``max_bytes``: POST bodies larger than this (or without Content-Length)
    are refused with HTTP 413 / 411 and a ``Client.RequestTooLarge`` /
    ``Client.InvalidArgument`` fault before any XML parsing. Bodies
    containing ``<!DOCTYPE`` or ``<!ENTITY`` are refused (no DTD processing,
    no entity expansion). The wrapped application may store the operation
    name in ``environ["soapattest.operation"]`` and a fault code in
    ``environ["soapattest.fault"]``; they are logged.
    """

    def __init__(self, app: WsgiApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        peer = environ.get("REMOTE_ADDR", "?")
        status_seen: list[str] = []

        def recording_start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            status_seen.append(status)
            return start_response(status, headers, *exc)

        try:
            result = self._handle(environ, recording_start)
        finally:
            op = environ.get("soapattest.operation") or environ.get("REQUEST_METHOD", "?")
            outcome = environ.get("soapattest.fault") or "ok"
            status = status_seen[0].split(" ", 1)[0] if status_seen else "-"
            log.info("op=%s peer=%s outcome=%s http=%s duration_ms=%.1f", op, peer, outcome,
                     status, (time.monotonic() - started) * 1000)
        return result

    def _handle(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return list(self.app(environ, start_response))  # GET ?wsdl
        length_text = environ.get("CONTENT_LENGTH") or ""
        if not length_text.isdigit():
            environ["soapattest.fault"] = "Client.InvalidArgument"
            return fault_response(start_response, "411 Length Required", "Client.InvalidArgument",
                                  "a Content-Length header is required")
        length = int(length_text)
        if length > self.max_bytes:
            environ["soapattest.fault"] = "Client.RequestTooLarge"
            return fault_response(
                start_response, "413 Payload Too Large", "Client.RequestTooLarge",
                f"request of {length} bytes exceeds the limit of {self.max_bytes} bytes",
            )
        body = environ["wsgi.input"].read(length)
        if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
            environ["soapattest.fault"] = "Client.InvalidArgument"
            return fault_response(start_response, "400 Bad Request", "Client.InvalidArgument",
                                  "DTDs and entity declarations are not accepted")
        environ["wsgi.input"] = io.BytesIO(body)
        return list(self.app(environ, start_response))


class ClientCertGuard:
    """WSGI middleware: only clients whose certificate subject CN is in ``allowed_cn``.

    Place it inside :class:`RequestGuard` (which has read the body already), so
    the refusal - HTTP 403 with a ``Client.NotAuthorized`` fault - reaches the client.
    """

    def __init__(self, app: WsgiApp, allowed_cn: Iterable[str]) -> None:
        self.app = app
        self.allowed_cn = frozenset(allowed_cn)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        names = environ.get("soapattest.client_cn") or ()
        if self.allowed_cn.isdisjoint(names):
            environ["soapattest.fault"] = "Client.NotAuthorized"
            log.warning("client certificate CN %s is not allowed", ",".join(names) or "(none)")
            return fault_response(start_response, "403 Forbidden", "Client.NotAuthorized",
                                  "this client certificate is not allowed to call the agent")
        return self.app(environ, start_response)


def make_server(
    host: str, port: int, app: WsgiApp, *, ssl_context: ssl.SSLContext | None = None
) -> ThreadingWSGIServer:
    """Bind a threaded WSGI server on ``host:port`` (port 0: a free port); HTTPS when
    ``ssl_context`` is given (see :func:`soapattest.security.tls.server_context`).

    The bound port is ``server.server_address[1]``. Raises ``OSError`` when
    the address cannot be bound.
    """
    cls = ThreadingWSGIServer6 if ":" in host else ThreadingWSGIServer
    server = cls((host, port), QuietHandler)
    server.ssl_context = ssl_context
    server.set_app(app)
    return server


def serve_in_thread(server: ThreadingWSGIServer) -> threading.Thread:
    """Run ``server.serve_forever`` in a daemon thread; stop with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="soapattest-agent-http", daemon=True)
    thread.start()
    return thread
