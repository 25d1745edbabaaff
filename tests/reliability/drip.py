"""A trust agent that drips its answers: some bytes at once, then one byte at a time.

:class:`DripAgent` listens on loopback (optionally TLS), reads one SOAP request per
connection and answers it - with :func:`event_log_answer`, or with what a real agent
(``upstream``) answers to the same request - sending ``Drip.prompt`` bytes at once and
the rest one byte every ``Drip.gap`` seconds. Each byte arrives well within any
per-read timeout; only a deadline on the whole call stops it. After
:data:`DRIP_LIMIT` seconds it sends the rest at once, so that a client without such a
deadline gets a whole (late) answer and a test expecting a cut-off fails instead of
hanging.
"""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from dataclasses import dataclass

import requests

from soapattest.server.agents import NS, SOAP_ENV

DRIP_LIMIT = 15.0  # seconds a dripping agent keeps it up before sending the rest
LOG = b"an event log" * 8


def http_response(body: bytes, content_type: str = "text/xml; charset=utf-8") -> bytes:
    """A whole HTTP/1.1 response carrying ``body``."""
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + body


def event_log_answer() -> bytes:
    """The HTTP response of an agent to GetEventLog, returning :data:`LOG`."""
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP_ENV}" '
        f'xmlns:a="{NS}"><s:Body><a:GetEventLogResponse><a:eventlog><a:data>'
        f"{base64.b64encode(LOG).decode()}</a:data></a:eventlog></a:GetEventLogResponse>"
        "</s:Body></s:Envelope>"
    ).encode()
    return http_response(body)


@dataclass(frozen=True)
class Drip:
    """How the agent answers: ``prompt`` bytes at once, then one byte every ``gap`` s."""

    prompt: int
    gap: float


class DripAgent:
    """An agent on loopback (optionally TLS) answering every request as the module
    docstring says; one thread per connection."""

    def __init__(
        self, drip: Drip, tls: ssl.SSLContext | None = None, upstream: str | None = None
    ) -> None:
        self.drip, self.tls, self.upstream = drip, tls, upstream
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/"

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        try:
            self._answer(self.tls.wrap_socket(conn, server_side=True) if self.tls else conn)
        except OSError:
            pass  # the client cut the call off
        finally:
            conn.close()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        request = b""
        while b"</soap:Envelope>" not in request:
            chunk = conn.recv(65536)
            if not chunk:
                return
            request += chunk
        self.requests += 1
        data = self._response(request)
        conn.sendall(data[: self.drip.prompt])
        stop = time.monotonic() + DRIP_LIMIT
        for i in range(self.drip.prompt, len(data)):
            if time.monotonic() > stop or self._closed.is_set():
                conn.sendall(data[i:])
                return
            conn.sendall(data[i : i + 1])
            time.sleep(self.drip.gap)

    def _response(self, request: bytes) -> bytes:
        if self.upstream is None:
            return event_log_answer()
        head, _, body = request.partition(b"\r\n\r\n")
        action = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"soapaction:"):
                action = line.split(b":", 1)[1].strip()
        answer = requests.post(
            self.upstream,
            data=body,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": action.decode()},
            timeout=30,
        )
        return http_response(answer.content, answer.headers.get("Content-Type", "text/xml"))

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
