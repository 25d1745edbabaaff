"""A hostile trust agent: a real HTTP server on loopback that speaks the agent WSDL and lies.

The attestation server reaches it like any agent (``HostileAgent.url``), over
real HTTP through :class:`~soapattest.server.agents.SoapAgentClient`. What it
answers is decided per operation (``GetIdentity``, ``ActivateCredential``,
``GetQuote``, ``GetEventLog``, ``GetImaLog``):

1. a rule set with :meth:`HostileAgent.on` (a function of the :class:`Call`),
   returning bytes (a SOAP envelope), a :class:`Reply` (any status, content
   type and body), :data:`HANG` (accept, then say nothing until the server
   gives up) or :data:`DROP` (close the connection without an answer);
2. else, with ``upstream`` set, the request is forwarded to that (real) agent
   and its answer returned unchanged (a man in the middle in pass-through);
3. else, with a :class:`~tests.adversarial.soft.SoftHost`, the soft host answers
   (quotes signed by its software AK, its logs, its software EK).

Helpers build the agent's response envelopes (:func:`quote_response`,
:func:`eventlog_response`, ...) and rewrite an upstream answer
(:meth:`Call.forward_tree`). Every request is recorded in ``calls``.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from lxml import etree

from soapattest.server.agents import NS, SOAP_ENV
from soapattest.tpm.pcr import PcrSelection
from tests.adversarial.soft import SoftHost

HANG_SECONDS = 30.0  # a hanging answer is released at the latest after this (or at close)
IMA_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Reply:
    """A raw HTTP answer."""

    body: bytes
    status: int = 200
    content_type: str = "text/xml; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


class _Signal:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


HANG = _Signal("HANG")  # accept the request, then stay silent
DROP = _Signal("DROP")  # close the connection without an answer

Answer = bytes | Reply | _Signal
Rule = Callable[["Call"], Answer]


def q(local: str) -> str:
    """Clark name of ``local`` in the agent namespace."""
    return f"{{{NS}}}{local}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope(payload: etree._Element) -> bytes:
    """A SOAP 1.1 envelope with ``payload`` as the single Body child."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "a": NS})
    etree.SubElement(env, f"{{{SOAP_ENV}}}Body").append(payload)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def _el(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, q(local))
    if text is not None:
        child.text = text
    return child


def quote_response(
    attest: bytes, signature: bytes, pcrs: Mapping[str, Mapping[int, bytes]]
) -> bytes:
    """GetQuoteResponse with these (untrusted) values."""
    resp = etree.Element(q("GetQuoteResponse"))
    quote = _el(resp, "quote")
    _el(quote, "attest", b64(attest))
    _el(quote, "signature", b64(signature))
    _el(quote, "pcr_update_counter", "1")
    for bank, values in pcrs.items():
        bank_el = _el(quote, "banks")
        _el(bank_el, "bank", bank)
        for index, value in sorted(values.items()):
            pcr = _el(bank_el, "pcr")
            _el(pcr, "index", str(index))
            _el(pcr, "value", b64(value))
    return envelope(resp)


def eventlog_response(data: bytes) -> bytes:
    """GetEventLogResponse serving ``data``."""
    resp = etree.Element(q("GetEventLogResponse"))
    _el(_el(resp, "eventlog"), "data", b64(data))
    return envelope(resp)


def ima_response(data: bytes, next_offset: int, more: bool) -> bytes:
    """GetImaLogResponse with one chunk."""
    resp = etree.Element(q("GetImaLogResponse"))
    chunk = _el(resp, "chunk")
    _el(chunk, "data", b64(data))
    _el(chunk, "next_offset", str(next_offset))
    _el(chunk, "more", "true" if more else "false")
    return envelope(resp)


def credential_response(credential: bytes) -> bytes:
    """ActivateCredentialResponse returning ``credential``."""
    resp = etree.Element(q("ActivateCredentialResponse"))
    _el(resp, "credential", b64(credential))
    return envelope(resp)


def identity_response(host: SoftHost) -> bytes:
    """GetIdentityResponse describing ``host``'s software EK and AK."""
    resp = etree.Element(q("GetIdentityResponse"))
    ident = _el(resp, "identity")
    ek = _el(ident, "ek")
    _el(ek, "key_type", "rsa")
    _el(ek, "public", b64(host.ek_public))
    _el(ek, "certificate", b64(host.ek_certificate))
    _el(ident, "ak_type", "ecc")
    _el(ident, "ak_public", b64(host.tpm.ak_public_bytes))
    _el(ident, "ak_name", b64(host.tpm.ak_name))
    for bank in host.tpm.banks:
        _el(ident, "pcr_bank", bank)
    _el(ident, "tpm_manufacturer", "SOFT")
    _el(ident, "tpm_manufacturer_id", "0")
    _el(ident, "firmware_version_1", "1")
    _el(ident, "firmware_version_2", "0")
    _el(ident, "agent_version", "hostile")
    return envelope(resp)


def fault_response(code: str, message: str) -> Reply:
    """A SOAP fault (HTTP 500) with ``code``."""
    resp = etree.Element(f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(resp, "faultcode").text = f"soap:{code}"
    etree.SubElement(resp, "faultstring").text = message
    return Reply(envelope(resp), status=500)


@dataclass
class Call:
    """One request the hostile agent received."""

    agent: HostileAgent
    operation: str
    raw: bytes
    body: etree._Element  # the Body child (the operation element)
    headers: Mapping[str, str]

    def text(self, local: str) -> str:
        return (self.body.findtext(q(local)) or "").strip()

    def binary(self, local: str) -> bytes:
        return base64.b64decode(self.text(local), validate=True)

    def selection(self) -> PcrSelection:
        """The PCR selection of a GetQuote request."""
        return PcrSelection.from_mapping(
            {
                (sel.findtext(q("bank")) or "").strip(): [
                    int(p.text or "0") for p in sel.iterfind(q("pcr"))
                ]
                for sel in self.body.iterfind(q("selection"))
            }
        )

    def forward(self, upstream: str | None = None) -> bytes:
        """Send the request unchanged to ``upstream`` (default: the agent's) and return the
        answer's body."""
        url = upstream or self.agent.upstream
        if not url:
            raise RuntimeError("no upstream agent to forward to")
        return self.agent.forward(url, self.operation, self.raw)

    def forward_tree(self, upstream: str | None = None) -> etree._Element:
        """The upstream answer parsed (edit it, then return ``envelope_of(tree)``)."""
        return etree.fromstring(self.forward(upstream))


def envelope_of(tree: etree._Element) -> bytes:
    """Serialise a (modified) response tree."""
    return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))


def set_binary(tree: etree._Element, local: str, data: bytes) -> None:
    """Replace the base64 text of the (single) element ``local`` anywhere in ``tree``."""
    found = list(tree.iter(q(local)))
    if len(found) != 1:
        raise AssertionError(f"expected one <{local}> in the answer, found {len(found)}")
    found[0].text = b64(data)


class HostileAgent:
    """See the module docstring. Use as a context manager (or call :meth:`close`)."""

    def __init__(self, *, upstream: str | None = None, soft: SoftHost | None = None) -> None:
        self.upstream = upstream
        self.soft = soft
        self.rules: dict[str, Rule] = {}
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._session = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hostile-agent",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The agent's SOAP endpoint."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def on(self, operation: str, rule: Rule | Answer) -> None:
        """Answer ``operation`` with ``rule`` (a function of the call, or a fixed answer)."""
        self.rules[operation] = rule if callable(rule) else (lambda _call, a=rule: a)

    def honest(self) -> None:
        """Drop every rule: forward to the upstream agent, or answer as the soft host."""
        self.rules.clear()

    def release(self) -> None:
        """End every hanging answer now."""
        self._release.set()
        self._release = threading.Event()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> HostileAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def forward(self, url: str, operation: str, raw: bytes) -> bytes:
        session = getattr(self._session, "s", None)
        if session is None:
            session = self._session.s = requests.Session()
            session.trust_env = False
        resp = session.post(
            url,
            data=raw,
            timeout=30,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'},
        )
        return resp.content

    def answer(self, call: Call) -> Answer:
        with self._lock:
            self.calls.append(call.operation)
        rule = self.rules.get(call.operation)
        if rule is not None:
            return rule(call)
        if self.upstream:
            return call.forward()
        if self.soft is not None:
            return soft_answer(self.soft, call)
        return fault_response("Server.Internal", "the hostile agent has nothing to say")


def soft_answer(host: SoftHost, call: Call) -> Answer:
    """What an honest agent in front of ``host`` would answer."""
    op = call.operation
    if op == "GetQuote":
        ev = host.tpm.quote(call.binary("nonce"), call.selection())
        return quote_response(ev.attest, ev.signature, ev.raw_pcrs)
    if op == "GetEventLog":
        return eventlog_response(host.event_log)
    if op == "GetImaLog":
        if host.ima_log is None:
            return fault_response("Server.ImaLogUnavailable", "no IMA list")
        offset = int(call.text("offset") or "0")
        chunk = host.ima_log[offset : offset + IMA_CHUNK]
        end = offset + len(chunk)
        return ima_response(chunk, end, end < len(host.ima_log))
    if op == "GetIdentity":
        return identity_response(host)
    if op == "ActivateCredential":
        try:
            return credential_response(
                host.activate_credential(
                    call.binary("credential_blob"), call.binary("encrypted_secret")
                )
            )
        except Exception as exc:  # noqa: BLE001 - any failure: a TPM would refuse too
            return fault_response("Client.CredentialRejected", f"activation failed: {exc!r}")
    return fault_response("Client.InvalidArgument", f"unknown operation {op}")


def _handler_for(agent: HostileAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes

        def log_message(self, *args: Any) -> None:  # quiet
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                root = etree.fromstring(
                    raw, parser=etree.XMLParser(resolve_entities=False, no_network=True)
                )
                body = root.find(f"{{{SOAP_ENV}}}Body")
                element = body[0] if body is not None and len(body) else root
                operation = etree.QName(element).localname
            except etree.XMLSyntaxError:
                element, operation = etree.Element("invalid"), "invalid"
            call = Call(agent, operation, raw, element, dict(self.headers))
            answer = agent.answer(call)
            if answer is HANG:
                agent._release.wait(HANG_SECONDS)
                self.close_connection = True
                return
            if answer is DROP:
                self.close_connection = True
                return
            reply = answer if isinstance(answer, Reply) else Reply(bytes(answer))
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(reply.body)

    return Handler
