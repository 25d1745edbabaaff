"""The server's port to trust agents, and its SOAP implementation.

:class:`AgentPort` is what the attestation use cases call; :class:`SoapAgentClient`
speaks the agent's WSDL (``wsdl/agent.wsdl``, namespace ``urn:soapattest:agent:v1``)
over HTTP with:

- keep-alive HTTP connections (urllib3 pools, per thread), a deadline on every
  whole call;
- a byte cap on every response (read incrementally, never all at once);
- a hardened XML parser: no DTD, no entities, no network, bounded depth;
- strict base64 for binary fields, and structural checks (one Body child,
  the expected response element, no duplicate PCRs).

Anything else the agent says (garbage, HTML, a fault, silence) becomes a
typed error: :class:`AgentUnreachableError`, :class:`AgentResponseError` or
:class:`AgentFaultError`; the caller turns those into UNKNOWN reports.

TLS (``https://`` agent URLs, TLS 1.2+): the agent's certificate is verified
against ``ca_bundle`` (the ``[agents] agent_ca`` setting; the system CAs when
unset) including its host name; with a per-call ``pin`` (the SHA-256
fingerprint of the agent's certificate stored at registration) the certificate
must also be exactly that one (host name not checked then; without
``ca_bundle`` the pin alone decides). ``client_cert``/``client_key`` are
presented to agents that require mutual TLS. A pinned call to an ``http://``
URL is refused. Implementation: urllib3 pools keyed by our own ``ssl.SSLContext``
per mode plus urllib3's ``assert_fingerprint`` (constant-time compare); no other
CA bundle is ever loaded into those contexts. Redirects are not followed, nothing
is retried, no proxy is used.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3
from lxml import etree
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SslError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from soapattest.errors import (
    AgentFaultError,
    AgentResponseError,
    AgentTlsError,
    AgentUnreachableError,
    ConfigError,
)
from soapattest.security.tls import client_context, fingerprint, normalize_fingerprint
from soapattest.security.xmlparse import hardened_parser
from soapattest.server.deadlines import POOL_CLASSES, CallDeadlines
from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.pcr import PcrSelection, PcrValues

NS = "urn:soapattest:agent:v1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class EkInfo:
    """One endorsement key as the agent reports it (untrusted until validated)."""

    key_type: str
    public: bytes
    certificate: bytes


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """GetIdentity: EKs, AK, banks and TPM facts (untrusted until validated)."""

    eks: tuple[EkInfo, ...]
    ak_type: str
    ak_public: bytes
    ak_name: bytes
    banks: tuple[str, ...]
    tpm_manufacturer: str
    firmware_version: int
    agent_version: str


@dataclass(frozen=True, slots=True)
class AgentQuote:
    """GetQuote: TPMS_ATTEST, TPMT_SIGNATURE and the raw PCR values (untrusted)."""

    attest: bytes
    signature: bytes
    raw_pcrs: PcrValues
    event_log_sha256: bytes | None = None  # what the agent says its event log hashes to


class AgentPort(Protocol):
    """What the server needs from a host's trust agent.

    ``pin``: SHA-256 fingerprint (hex) the agent's TLS certificate must have
    (None: CA verification only).
    """

    def fetch_fingerprint(self, url: str, *, unsafe_trust_on_first_use: bool = False) -> str:
        """SHA-256 (hex) of the certificate the https agent at ``url`` presents."""

    def identity(self, url: str, *, pin: str | None = None) -> AgentIdentity:
        """The host's TPM identity."""

    def activate_credential(
        self, url: str, key_type: str, blob: bytes, secret: bytes, *, pin: str | None = None
    ) -> bytes:
        """TPM2_ActivateCredential with the host's EK of ``key_type``."""

    def quote(
        self, url: str, nonce: bytes, selection: PcrSelection, *, pin: str | None = None
    ) -> AgentQuote:
        """A fresh quote over ``selection`` with ``nonce``."""

    def event_log(self, url: str, *, pin: str | None = None) -> bytes:
        """The measured-boot event log."""

    def ima_log(self, url: str, offset: int, *, pin: str | None = None) -> tuple[bytes, int, bool]:
        """IMA list bytes from ``offset``: (data, next offset, more)."""


def _parser() -> etree.XMLParser:
    return hardened_parser()


def _q(local: str) -> str:
    return f"{{{NS}}}{local}"


def _depth_ok(root: etree._Element) -> bool:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in node)
    return True


def parse_envelope(data: bytes, operation: str) -> etree._Element:
    """The ``<operation>Response`` element of a SOAP 1.1 response; raise typed errors otherwise.

    Refuses DOCTYPEs, entities, excessive depth, more than one Body child, and
    anything but the expected element. A SOAP fault raises :class:`AgentFaultError`.
    """
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise AgentResponseError(f"{operation}: the agent's answer carries a DTD or entities")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise AgentResponseError(f"{operation}: the agent's answer is not XML ({exc})") from None
    if root.tag != f"{{{SOAP_ENV}}}Envelope" or not _depth_ok(root):
        raise AgentResponseError(f"{operation}: the agent's answer is not a SOAP 1.1 envelope")
    bodies = root.findall(f"{{{SOAP_ENV}}}Body")
    if len(bodies) != 1 or len(bodies[0]) != 1:
        raise AgentResponseError(f"{operation}: the SOAP Body must hold exactly one element")
    payload = bodies[0][0]
    if payload.tag == f"{{{SOAP_ENV}}}Fault":
        code = (payload.findtext("faultcode") or "").split(":", 1)[-1]
        text = (payload.findtext("faultstring") or "").strip()
        raise AgentFaultError(f"agent fault {code}: {text[:300]}", agent_code=code)
    if payload.tag != _q(f"{operation}Response"):
        raise AgentResponseError(f"{operation}: unexpected answer element {payload.tag!r}")
    return payload


def _child(parent: etree._Element, local: str, what: str) -> etree._Element:
    found = parent.findall(_q(local))
    if len(found) != 1:
        raise AgentResponseError(f"{what}: expected one <{local}>, found {len(found)}")
    return found[0]


def _text(parent: etree._Element, local: str, what: str) -> str:
    return (_child(parent, local, what).text or "").strip()


def _b64(parent: etree._Element, local: str, what: str, *, optional: bool = False) -> bytes:
    found = parent.findall(_q(local))
    if optional and not found:
        return b""
    text = "".join((_child(parent, local, what).text or "").split())
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AgentResponseError(f"{what}: <{local}> is not base64") from None


def _int(parent: etree._Element, local: str, what: str) -> int:
    text = _text(parent, local, what)
    if not text.isdigit() or len(text) > 20:
        raise AgentResponseError(f"{what}: <{local}> is not an unsigned integer")
    return int(text)


def _children(parent: etree._Element, local: str) -> Iterator[etree._Element]:
    yield from parent.iterfind(_q(local))


def decode_identity(payload: etree._Element) -> AgentIdentity:
    """GetIdentityResponse -> :class:`AgentIdentity`."""
    ident = _child(payload, "identity", "GetIdentity")
    eks = tuple(
        EkInfo(
            key_type=_text(ek, "key_type", "EK"),
            public=_b64(ek, "public", "EK"),
            certificate=_b64(ek, "certificate", "EK", optional=True),
        )
        for ek in _children(ident, "ek")
    )
    if not eks:
        raise AgentResponseError("GetIdentity: no endorsement key")
    fw1 = _int(ident, "firmware_version_1", "GetIdentity")
    fw2 = _int(ident, "firmware_version_2", "GetIdentity")
    return AgentIdentity(
        eks=eks,
        ak_type=_text(ident, "ak_type", "GetIdentity"),
        ak_public=_b64(ident, "ak_public", "GetIdentity"),
        ak_name=_b64(ident, "ak_name", "GetIdentity"),
        banks=tuple((b.text or "").strip() for b in _children(ident, "pcr_bank")),
        tpm_manufacturer=_text(ident, "tpm_manufacturer", "GetIdentity")[:64],
        firmware_version=((fw1 & 0xFFFFFFFF) << 32) | (fw2 & 0xFFFFFFFF),
        agent_version=_text(ident, "agent_version", "GetIdentity")[:64],
    )


def decode_quote(payload: etree._Element) -> AgentQuote:
    """GetQuoteResponse -> :class:`AgentQuote` (duplicate banks or PCRs are refused)."""
    quote = _child(payload, "quote", "GetQuote")
    raw: dict[str, dict[int, bytes]] = {}
    for bank_el in _children(quote, "banks"):
        bank = _text(bank_el, "bank", "GetQuote")
        if hash_by_name(bank) is None:
            raise AgentResponseError(f"GetQuote: unknown bank {bank[:16]!r}")
        if bank in raw:
            raise AgentResponseError(f"GetQuote: bank {bank} reported twice")
        values: dict[int, bytes] = {}
        for pcr_el in _children(bank_el, "pcr"):
            index = _int(pcr_el, "index", "GetQuote")
            if index in values:
                raise AgentResponseError(f"GetQuote: PCR {bank}:{index} reported twice")
            values[index] = _b64(pcr_el, "value", "GetQuote")
        raw[bank] = values
    log_digest = _b64(quote, "event_log_sha256", "GetQuote", optional=True) or None
    if log_digest is not None and len(log_digest) != 32:
        raise AgentResponseError("GetQuote: <event_log_sha256> is not 32 bytes")
    return AgentQuote(
        attest=_b64(quote, "attest", "GetQuote"),
        signature=_b64(quote, "signature", "GetQuote"),
        raw_pcrs=raw,
        event_log_sha256=log_digest,
    )


def encode_request(operation: str, body: etree._Element | None = None) -> bytes:
    """A SOAP 1.1 envelope with ``<operation>`` (and its children) in the agent namespace."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "a": NS})
    b = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    b.append(body if body is not None else etree.Element(_q(operation)))
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def _element(tag: str, text: str | None = None) -> etree._Element:
    el = etree.Element(_q(tag))
    if text is not None:
        el.text = text
    return el


def _sub(parent: etree._Element, tag: str, text: str) -> None:
    parent.append(_element(tag, text))


POOLS_PER_THREAD = 10  # agents whose kept-alive connection a thread keeps (LRU)


class _TlsContexts:
    """The client SSL contexts of the three verification modes (built once)."""

    def __init__(
        self, ca_bundle: Path | None, client_cert: Path | None, client_key: Path | None
    ) -> None:
        self.has_ca = ca_bundle is not None
        try:
            # CA (or system CAs) + host name
            self.verified = client_context(
                ca=ca_bundle, client_cert=client_cert, client_key=client_key
            )
            # CA + pin (urllib3 skips the host name check when pinning)
            self.pinned_ca = client_context(
                ca=ca_bundle, client_cert=client_cert, client_key=client_key, check_hostname=False
            )
            # pin only (no CA configured): the fingerprint is the whole check
            self.pinned_only = client_context(
                ca=None, client_cert=client_cert, client_key=client_key, verify_chain=False
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the agent TLS CA or client certificate: {exc}", option="agents"
            ) from exc

    def pool_kwargs(self, pin: str | None) -> dict[str, Any]:
        if pin is None:
            return {"ssl_context": self.verified, "cert_reqs": "CERT_REQUIRED"}
        if self.has_ca:
            return {
                "ssl_context": self.pinned_ca,
                "cert_reqs": "CERT_REQUIRED",
                "assert_fingerprint": pin,
            }
        return {
            "ssl_context": self.pinned_only,
            "cert_reqs": "CERT_NONE",
            "assert_fingerprint": pin,
        }


class SoapAgentClient:
    """:class:`AgentPort` over SOAP/HTTP(S) with timeouts and caps (see module docstring).

    ``ca_bundle``: PEM bundle agents' certificates must chain to (None: system CAs);
    ``client_cert``/``client_key``: presented for mutual TLS. Raises ConfigError for
    unreadable TLS files.
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_response_bytes: int,
        ca_bundle: Path | None = None,
        client_cert: Path | None = None,
        client_key: Path | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._tls = _TlsContexts(ca_bundle, client_cert, client_key)
        self._local = threading.local()
        self._deadlines = CallDeadlines()

    def _pools(self) -> urllib3.PoolManager:
        pools: urllib3.PoolManager | None = getattr(self._local, "pools", None)
        if pools is None:
            pools = urllib3.PoolManager(num_pools=POOLS_PER_THREAD, maxsize=1, block=False)
            pools.pool_classes_by_scheme = POOL_CLASSES  # sockets known to the deadlines
            self._local.pools = pools
        return pools

    def fetch_fingerprint(self, url: str, *, unsafe_trust_on_first_use: bool = False) -> str:
        """The SHA-256 fingerprint (hex) of the certificate the agent at ``url`` presents,
        to pin at registration.

        By default the certificate must verify against the CA bundle (and name) first.
        ``unsafe_trust_on_first_use=True`` accepts any certificate: whoever answers
        at that moment gets pinned (acceptable only when the network path is trusted
        during registration, or the operator compares the value out of band).
        Raises AgentTlsError / AgentUnreachableError.
        """
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise AgentTlsError(f"{url} is not an https:// agent URL")
        ctx = self._tls.pinned_only if unsafe_trust_on_first_use else self._tls.verified
        try:
            with (
                socket.create_connection(
                    (parts.hostname, parts.port or 443), timeout=self.timeout
                ) as raw,
                ctx.wrap_socket(raw, server_hostname=parts.hostname) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
        except ssl.SSLError as exc:
            raise AgentTlsError(
                f"TLS with the agent at {url} failed: {exc.reason or exc}"
            ) from None
        except OSError as exc:
            raise AgentUnreachableError(f"cannot reach the agent at {url}: {exc}") from None
        if not der:
            raise AgentTlsError(f"the agent at {url} presented no certificate")
        return fingerprint(der)

    def _post(self, url: str, data: bytes, headers: dict[str, str], pin: str | None) -> Any:
        parsed = urllib3.util.parse_url(url)
        pool_kwargs: dict[str, Any] | None = None
        if parsed.scheme == "https":
            try:
                pool_kwargs = self._tls.pool_kwargs(
                    None if pin is None else normalize_fingerprint(pin)
                )
            except ValueError as exc:
                raise AgentTlsError(f"invalid certificate pin for {url}: {exc}") from None
        elif pin is not None:
            raise AgentTlsError(
                f"the agent at {url} has a pinned certificate but the URL is not https://"
            )
        pool = self._pools().connection_from_url(url, pool_kwargs=pool_kwargs)
        return pool.urlopen(
            "POST",
            parsed.request_uri,
            body=data,
            headers=headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
        )

    def _call(
        self,
        url: str,
        operation: str,
        body: etree._Element | None = None,
        *,
        pin: str | None = None,
    ) -> etree._Element:
        data = encode_request(operation, body)
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'}
        late = f"{operation}: the agent at {url} did not answer within {self.timeout:g} s"
        try:
            # self.timeout bounds the whole exchange, not only each read (see deadlines.py).
            with self._deadlines.guard(self.timeout) as call:
                resp = self._post(url, data, headers, pin)
                try:
                    content_type = resp.headers.get("Content-Type", "")
                    status = resp.status
                    answer = self._read_capped(resp, operation)
                except BaseException:
                    resp.close()  # never hand a half-read connection back to the pool
                    raise
                resp.release_conn()
        except (Urllib3Error, OSError, http.client.HTTPException) as exc:
            if call.expired or isinstance(exc, Urllib3Timeout | TimeoutError):
                raise AgentUnreachableError(late) from None
            if isinstance(exc, Urllib3SslError | ssl.SSLError):
                reason = str(exc.args[0] if exc.args else exc)[-300:]
                raise AgentTlsError(
                    f"{operation}: TLS with the agent at {url} failed: {reason}"
                ) from None
            raise AgentUnreachableError(
                f"{operation}: cannot reach the agent at {url}: {type(exc).__name__}"
            ) from None
        if call.expired:  # cut off, and what arrived looked like a whole answer
            raise AgentUnreachableError(late)
        if "xml" not in content_type:
            raise AgentResponseError(
                f"{operation}: the agent answered HTTP {status} "
                f"with {content_type or 'no content type'}, not SOAP"
            )
        return parse_envelope(answer, operation)

    def _read_capped(self, resp: Any, operation: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in resp.stream(65536):
            size += len(chunk)
            if size > self.max_response_bytes:
                raise AgentResponseError(
                    f"{operation}: the agent's answer exceeds {self.max_response_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def identity(self, url: str, *, pin: str | None = None) -> AgentIdentity:
        """GetIdentity."""
        return decode_identity(self._call(url, "GetIdentity", pin=pin))

    def activate_credential(
        self, url: str, key_type: str, blob: bytes, secret: bytes, *, pin: str | None = None
    ) -> bytes:
        """ActivateCredential."""
        req = _element("ActivateCredential")
        _sub(req, "ek_type", key_type)
        _sub(req, "credential_blob", base64.b64encode(blob).decode())
        _sub(req, "encrypted_secret", base64.b64encode(secret).decode())
        payload = self._call(url, "ActivateCredential", req, pin=pin)
        return _b64(payload, "credential", "ActivateCredential")

    def quote(
        self, url: str, nonce: bytes, selection: PcrSelection, *, pin: str | None = None
    ) -> AgentQuote:
        """GetQuote."""
        req = _element("GetQuote")
        _sub(req, "nonce", base64.b64encode(nonce).decode())
        for bank, pcrs in selection.banks:
            sel = _element("selection")
            _sub(sel, "bank", bank)
            for pcr in pcrs:
                _sub(sel, "pcr", str(pcr))
            req.append(sel)
        return decode_quote(self._call(url, "GetQuote", req, pin=pin))

    def event_log(self, url: str, *, pin: str | None = None) -> bytes:
        """GetEventLog."""
        payload = self._call(url, "GetEventLog", pin=pin)
        return _b64(_child(payload, "eventlog", "GetEventLog"), "data", "GetEventLog")

    def ima_log(self, url: str, offset: int, *, pin: str | None = None) -> tuple[bytes, int, bool]:
        """GetImaLog from ``offset``."""
        req = _element("GetImaLog")
        _sub(req, "offset", str(offset))
        chunk = _child(self._call(url, "GetImaLog", req, pin=pin), "chunk", "GetImaLog")
        more = _text(chunk, "more", "GetImaLog")
        if more not in ("true", "false", "1", "0"):
            raise AgentResponseError("GetImaLog: <more> is not a boolean")
        return (
            _b64(chunk, "data", "GetImaLog"),
            _int(chunk, "next_offset", "GetImaLog"),
            more in ("true", "1"),
        )
