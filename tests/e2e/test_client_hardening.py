"""The client against a hostile or broken peer: a real local HTTP(S) server that answers
what each test chooses (DTDs, entity bombs, HTML, unknown elements, silence), and the
WS-Security header the client sends. No swtpm needed."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

from soapattest.client import AttestationClient
from soapattest.errors import (
    InvalidArgumentError,
    ServerResponseError,
    ServerUnreachableError,
    UnknownHostError,
)

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
OK_BODY = (
    f"<?xml version='1.0' encoding='UTF-8'?><e:Envelope xmlns:e='{ENV}' "
    "xmlns:t='urn:soapattest:v1'><e:Body><t:GetSigningCertificateResponse>"
    f"<t:certificate>{PEM}</t:certificate></t:GetSigningCertificateResponse></e:Body>"
    "</e:Envelope>"
)
FAULT_BODY = (
    f"<?xml version='1.0' encoding='UTF-8'?><e:Envelope xmlns:e='{ENV}'><e:Body><e:Fault>"
    "<faultcode>e:Client.UnknownHost</faultcode><faultstring>no host named 'x'</faultstring>"
    "</e:Fault></e:Body></e:Envelope>"
)
DTD_BODY = (
    "<?xml version='1.0'?><!DOCTYPE e:Envelope [<!ELEMENT x ANY>]>" + OK_BODY.split("?>", 1)[1]
)
BOMB_BODY = (
    "<?xml version='1.0'?><!DOCTYPE e:Envelope [<!ENTITY a 'aaaaaaaaaa'>"
    "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]>"
    + OK_BODY.split("?>", 1)[1].replace(PEM, "&c;")
)
UNKNOWN_ELEMENT_BODY = OK_BODY.replace(
    "</t:certificate>", "</t:certificate><t:surprise>1</t:surprise>"
)


@dataclass
class Peer:
    """A scripted SOAP peer: path -> (status, content type, body, delay)."""

    url: str
    requests: list[bytes] = field(default_factory=list)


ROUTES: dict[str, tuple[int, str, str, float]] = {
    "/ok": (200, "text/xml; charset=utf-8", OK_BODY, 0),
    "/fault": (500, "text/xml; charset=utf-8", FAULT_BODY, 0),
    "/dtd": (200, "text/xml; charset=utf-8", DTD_BODY, 0),
    "/bomb": (200, "text/xml; charset=utf-8", BOMB_BODY, 0),
    "/html": (502, "text/html", "<html><body>Bad Gateway</body></html>", 0),
    "/unknown": (200, "text/xml; charset=utf-8", UNKNOWN_ELEMENT_BODY, 0),
    "/garbage": (200, "text/xml; charset=utf-8", "not < xml", 0),
    "/slow": (200, "text/xml; charset=utf-8", OK_BODY, 3.0),
    "/redirect": (307, "text/xml; charset=utf-8", "", 0),
    "/huge": (200, "text/xml; charset=utf-8", OK_BODY.replace(PEM, "A" * 200_000), 0),
}


def _serve(tls: ssl.SSLContext | None) -> Iterator[Peer]:
    seen: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            seen.append(self.rfile.read(length))
            status, ctype, body, delay = ROUTES[self.path]
            time.sleep(delay)
            data = body.encode()
            self.send_response(status)
            if status == 307:
                self.send_header("Location", "/ok")
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may have given up (timeout)
                self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield Peer(f"{scheme}://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    yield from _serve(None)


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soapattest test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    base = tmp_path_factory.mktemp("tls")
    cert_path, key_path = base / "cert.pem", base / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_peer(tls_material: tuple[Path, Path]) -> Iterator[Peer]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls_material)
    yield from _serve(ctx)


def security_header(body: bytes) -> etree._Element | None:
    root = etree.fromstring(body)
    return root.find(f"{{{ENV}}}Header/{{{WSSE}}}Security")


# ------------------------------------------------------------------ answers


def test_valid_answer_is_parsed(peer: Peer) -> None:
    assert AttestationClient(peer.url + "/ok").get_signing_certificate() == PEM.encode()


def test_fault_is_raised_as_its_class(peer: Peer) -> None:
    with pytest.raises(UnknownHostError) as info:
        AttestationClient(peer.url + "/fault").get_signing_certificate()
    assert info.value.message == "no host named 'x'"


@pytest.mark.parametrize("path", ["/dtd", "/bomb"])
def test_dtd_and_entities_are_refused(peer: Peer, path: str) -> None:
    with pytest.raises(ServerResponseError, match="DTD"):
        AttestationClient(peer.url + path).get_signing_certificate()


def test_html_error_page_is_a_bad_response(peer: Peer) -> None:
    with pytest.raises(ServerResponseError) as info:
        AttestationClient(peer.url + "/html").get_signing_certificate()
    assert info.value.status == 502


def test_redirect_is_not_followed(peer: Peer) -> None:
    before = len(peer.requests)
    with pytest.raises(ServerResponseError) as info:
        AttestationClient(peer.url + "/redirect").get_signing_certificate()
    assert info.value.status == 307
    assert len(peer.requests) == before + 1


def test_oversized_answer_is_refused(peer: Peer) -> None:
    with pytest.raises(ServerResponseError, match="exceeds"):
        AttestationClient(peer.url + "/huge", max_response_bytes=100_000).get_signing_certificate()
    assert AttestationClient(peer.url + "/huge").get_signing_certificate().startswith(b"AAAA")


def test_unknown_element_is_refused_in_strict_mode(peer: Peer) -> None:
    with pytest.raises(ServerResponseError):
        AttestationClient(peer.url + "/unknown").get_signing_certificate()


def test_garbage_is_a_bad_response(peer: Peer) -> None:
    with pytest.raises(ServerResponseError):
        AttestationClient(peer.url + "/garbage").get_signing_certificate()


def test_timeout_is_unreachable(peer: Peer) -> None:
    with pytest.raises(ServerUnreachableError, match="in time"):
        AttestationClient(peer.url + "/slow", timeout=0.5).get_signing_certificate()


def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(ServerUnreachableError, match="Connection refused"):
            AttestationClient(f"http://127.0.0.1:{port}/").get_signing_certificate()


def test_bad_url_is_refused_before_any_call() -> None:
    with pytest.raises(InvalidArgumentError):
        AttestationClient("ftp://127.0.0.1/")
    with pytest.raises(InvalidArgumentError):
        AttestationClient("http://127.0.0.1:1/", timeout=0)


def test_request_that_the_wsdl_cannot_express_is_refused_locally(peer: Peer) -> None:
    before = len(peer.requests)
    with pytest.raises(InvalidArgumentError):
        AttestationClient(peer.url + "/ok").get_host(None)  # type: ignore[arg-type]
    assert len(peer.requests) == before  # nothing was sent


def test_proxy_environment_is_ignored_unless_asked(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setenv("HTTP_PROXY", dead)
        monkeypatch.setenv("http_proxy", dead)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert AttestationClient(peer.url + "/ok").get_signing_certificate() == PEM.encode()
        with pytest.raises(ServerUnreachableError):
            AttestationClient(peer.url + "/ok", trust_env=True).get_signing_certificate()


# ------------------------------------------------------------------ WS-Security


def test_no_credentials_no_security_header(peer: Peer) -> None:
    AttestationClient(peer.url + "/ok").get_signing_certificate()
    assert security_header(peer.requests[-1]) is None


def test_password_digest_over_http(peer: Peer) -> None:
    client = AttestationClient(peer.url + "/ok", username="ops", password="correct horse 42")
    client.get_signing_certificate()
    header = security_header(peer.requests[-1])
    assert header is not None
    token = header.find(f"{{{WSSE}}}UsernameToken")
    assert token is not None
    assert token.findtext(f"{{{WSSE}}}Username") == "ops"
    password = token.find(f"{{{WSSE}}}Password")
    assert password is not None
    assert password.get("Type", "").endswith("#PasswordDigest")
    assert password.text != "correct horse 42"
    assert token.findtext(f"{{{WSSE}}}Nonce")
    assert (token.findtext(f"{{{WSU}}}Created") or "").endswith("Z")


def test_user_without_password_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        AttestationClient("http://127.0.0.1:1/", username="ops")


def test_password_text_over_verified_https(tls_peer: Peer, tls_material: tuple[Path, Path]) -> None:
    client = AttestationClient(
        tls_peer.url + "/ok",
        username="ops",
        password="correct horse 42",
        verify=str(tls_material[0]),
    )
    assert client.get_signing_certificate() == PEM.encode()
    header = security_header(tls_peer.requests[-1])
    assert header is not None
    password = header.find(f"{{{WSSE}}}UsernameToken/{{{WSSE}}}Password")
    assert password is not None
    assert password.get("Type", "").endswith("#PasswordText")
    assert password.text == "correct horse 42"


def test_unverified_tls_certificate_is_refused(tls_peer: Peer) -> None:
    before = len(tls_peer.requests)
    with pytest.raises(ServerUnreachableError, match="TLS"):
        AttestationClient(
            tls_peer.url + "/ok", username="ops", password="correct horse 42"
        ).get_signing_certificate()
    assert len(tls_peer.requests) == before  # the password never left
