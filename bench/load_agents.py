"""Benchmark-only load agents: many fake hosts behind one fast HTTP server.

Each host is an :class:`~soapattest.testing.unsafe_soft_tpm.UnsafeSoftTpm`
(a software AK - UNSAFE, benchmarks only) booted from a real event log; the
server answers the agent WSDL's GetQuote and GetEventLog at
``http://127.0.0.1:PORT/h<i>/`` at once. The benchmark registers these hosts
by writing their identities into the store itself; no production path can
enrol them.
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing as mp
import re
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from soapattest.testing.unsafe_soft_tpm import UnsafeSoftTpm
from soapattest.tpm.eventlog import parse_event_log

ENV = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:a="urn:soapattest:agent:v1"><soap:Body>{body}</soap:Body></soap:Envelope>'
)
_NONCE = re.compile(rb"<[^>]*nonce>([^<]+)<")
_SEL = re.compile(rb"<[^>]*selection>(.*?)</[^>]*selection>", re.S)
_BANK = re.compile(rb"<[^>]*bank>([^<]+)<")
_PCR = re.compile(rb"<[^>]*pcr>(\d+)<")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class LoadAgents:
    """``count`` software hosts booted from ``log_path``."""

    def __init__(self, count: int, log_path: Path, key_type: str = "ecc") -> None:
        self.raw_log = log_path.read_bytes()
        log = parse_event_log(self.raw_log)
        banks = tuple(b for b in log.banks if b in ("sha1", "sha256", "sha384"))
        self.hosts = []
        for _ in range(count):
            tpm = UnsafeSoftTpm(key_type=key_type, banks=banks)
            tpm.boot(log)
            self.hosts.append(tpm)
        self.log_digest = _b64(hashlib.sha256(self.raw_log).digest())  # as real agents say
        self.log_response = ENV.format(
            body=f"<a:GetEventLogResponse><a:eventlog><a:data>{_b64(self.raw_log)}</a:data>"
            "</a:eventlog></a:GetEventLogResponse>"
        ).encode()

    def quote_response(self, index: int, body: bytes) -> bytes:
        """GetQuoteResponse for host ``index`` to the request ``body``."""
        nonce = base64.b64decode(_NONCE.search(body).group(1))  # type: ignore[union-attr]
        selection = {
            _BANK.search(s).group(1).decode(): [int(p) for p in _PCR.findall(s)]  # type: ignore[union-attr]
            for s in _SEL.findall(body)
        }
        ev = self.hosts[index].quote(nonce, selection)
        banks = "".join(
            f"<a:banks><a:bank>{bank}</a:bank>"
            + "".join(
                f"<a:pcr><a:index>{i}</a:index><a:value>{_b64(v)}</a:value></a:pcr>"
                for i, v in sorted(values.items())
            )
            + "</a:banks>"
            for bank, values in ev.raw_pcrs.items()
        )
        return ENV.format(
            body=f"<a:GetQuoteResponse><a:quote><a:attest>{_b64(ev.attest)}</a:attest>"
            f"<a:signature>{_b64(ev.signature)}</a:signature>"
            f"<a:pcr_update_counter>1</a:pcr_update_counter>{banks}"
            f"<a:event_log_sha256>{self.log_digest}</a:event_log_sha256></a:quote>"
            "</a:GetQuoteResponse>"
        ).encode()


def _handler(agents: LoadAgents) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once

        def log_message(self, *_: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            index = int(self.path.strip("/").removeprefix("h") or 0)
            quote = b"GetQuote" in body
            out = agents.quote_response(index, body) if quote else agents.log_response
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return Handler


def _serve(agents: LoadAgents, sock: socket.socket) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(agents), bind_and_activate=False)
    server.socket = sock
    server.daemon_threads = True
    server.serve_forever()


def start(agents: LoadAgents) -> tuple[str, Any]:
    """Serve ``agents`` from a child process; returns (base URL, process)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    port = sock.getsockname()[1]
    proc = mp.get_context("fork").Process(target=_serve, args=(agents, sock), daemon=True)
    proc.start()
    sock.close()
    return f"http://127.0.0.1:{port}/", proc
