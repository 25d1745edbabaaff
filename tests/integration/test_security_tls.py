"""TLS between the attestation server's agent client and trust agents, over real HTTPS.

Certificates are generated per test module (cryptography). The agent side is
the agent's own threaded WSGI server (``soapattest.agent.httpserver``) with
its TLS context, request guard and client-certificate guard in front of a
small SOAP application; one test runs the real agent process on a swtpm.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from soapattest.agent.httpserver import (
    ClientCertGuard,
    RequestGuard,
    ThreadingWSGIServer,
    make_server,
    serve_in_thread,
)
from soapattest.errors import (
    AgentFaultError,
    AgentResponseError,
    AgentTlsError,
    AgentUnreachableError,
)
from soapattest.security.tls import fingerprint, server_context
from soapattest.server.agents import NS, SOAP_ENV, SoapAgentClient
from tests.swtpm_fixture import have_swtpm, swtpm  # noqa: F401

LOG = b"measured boot log bytes"
SERVER_CN = "soapattest-server"


# ------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    cert_path: Path
    key_path: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert.public_bytes(serialization.Encoding.DER))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey,
           cert: x509.Certificate) -> Issued:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return Issued(key, cert, cert_path, key_path)


def make_ca(directory: Path, cn: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, cn, key, cert)


def issue(directory: Path, ca: Issued, cn: str, *, client: bool = False,
          ip: str | None = "127.0.0.1", dns: str | None = None) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = []
    if ip:
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    if dns:
        names.append(x509.DNSName(dns))
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return _write(directory, f"{cn}-{ca.cert.subject.rfc4514_string()[3:]}", key, cert)


@dataclass(frozen=True)
class Pki:
    agent_ca: Issued
    rogue_ca: Issued
    client_ca: Issued
    agent: Issued  # issued by agent_ca for 127.0.0.1
    agent_wrong_name: Issued  # issued by agent_ca for agent.example only
    rogue_agent: Issued  # issued by rogue_ca for 127.0.0.1
    client: Issued  # CN soapattest-server by client_ca
    client_other_cn: Issued  # CN intruder by client_ca
    client_rogue: Issued  # CN soapattest-server by rogue_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    agent_ca, rogue_ca, client_ca = (make_ca(d, n) for n in ("agent-ca", "rogue-ca", "client-ca"))
    return Pki(
        agent_ca=agent_ca,
        rogue_ca=rogue_ca,
        client_ca=client_ca,
        agent=issue(d, agent_ca, "agent"),
        agent_wrong_name=issue(d, agent_ca, "agent-wrong-name", ip=None, dns="agent.example"),
        rogue_agent=issue(d, rogue_ca, "agent"),
        client=issue(d, client_ca, SERVER_CN, client=True, ip=None),
        client_other_cn=issue(d, client_ca, "intruder", client=True, ip=None),
        client_rogue=issue(d, rogue_ca, SERVER_CN, client=True, ip=None),
    )


# ------------------------------------------------------------------ a TLS agent


def soap_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Answers every POST with a GetEventLogResponse."""
    environ["soapattest.operation"] = "GetEventLog"
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}" '
        f'xmlns:a="{NS}"><soap:Body><a:GetEventLogResponse><a:eventlog><a:data>'
        f"{base64.b64encode(LOG).decode()}</a:data></a:eventlog></a:GetEventLogResponse>"
        "</soap:Body></soap:Envelope>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ThreadingWSGIServer] = []

    def start(cert: Issued, *, client_ca: Issued | None = None,
              allowed_cn: tuple[str, ...] = ()) -> str:
        ctx = server_context(cert.cert_path, cert.key_path,
                             client_ca=client_ca.cert_path if client_ca else None)
        app: Any = soap_app
        if allowed_cn:
            app = ClientCertGuard(app, allowed_cn)
        server = make_server("127.0.0.1", 0, RequestGuard(app, 65536), ssl_context=ctx)
        serve_in_thread(server)
        servers.append(server)
        return f"https://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client(**tls: Any) -> SoapAgentClient:
    return SoapAgentClient(timeout=10, max_response_bytes=1 << 20, **tls)


# ------------------------------------------------------------------ server certificate


def test_agent_verified_by_ca(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    assert client(ca_bundle=pki.agent_ca.cert_path).event_log(url) == LOG


def test_agent_from_another_ca_refused(pki: Pki, serve: Any) -> None:
    url = serve(pki.rogue_agent)
    with pytest.raises(AgentTlsError):
        client(ca_bundle=pki.agent_ca.cert_path).event_log(url)


def test_wrong_ca_bundle_refused(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    with pytest.raises(AgentTlsError):
        client(ca_bundle=pki.rogue_ca.cert_path).event_log(url)


def test_system_cas_do_not_trust_a_private_agent_ca(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    with pytest.raises(AgentTlsError):
        client().event_log(url)


def test_host_name_checked_without_pin(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent_wrong_name)
    c = client(ca_bundle=pki.agent_ca.cert_path)
    # the exact certificate pinned: the name no longer matters, the CA still does
    assert c.event_log(url, pin=pki.agent_wrong_name.fingerprint) == LOG
    # a pinned call before must not relax the name check of unpinned calls
    with pytest.raises(AgentTlsError):
        c.event_log(url)
    with pytest.raises(AgentTlsError):
        client(ca_bundle=pki.agent_ca.cert_path).event_log(url)


def test_pin_alone(pki: Pki, serve: Any) -> None:
    url = serve(pki.rogue_agent)  # no CA configured: the pin is the whole check
    c = client()
    assert c.event_log(url, pin=pki.rogue_agent.fingerprint) == LOG
    with pytest.raises(AgentTlsError):
        c.event_log(url, pin=pki.agent.fingerprint)
    with pytest.raises(AgentTlsError):
        c.event_log(url)  # unpinned calls still verify the chain (system CAs)


def test_pin_with_ca(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    c = client(ca_bundle=pki.agent_ca.cert_path)
    assert c.event_log(url, pin=pki.agent.fingerprint) == LOG
    colons = ":".join(pki.agent.fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    assert c.event_log(url, pin=colons) == LOG
    with pytest.raises(AgentTlsError):
        c.event_log(url, pin=pki.rogue_agent.fingerprint)


def test_pin_does_not_override_the_ca(pki: Pki, serve: Any) -> None:
    url = serve(pki.rogue_agent)
    with pytest.raises(AgentTlsError):
        client(ca_bundle=pki.agent_ca.cert_path).event_log(url, pin=pki.rogue_agent.fingerprint)


def test_pools_do_not_mix_pins(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    c = client(ca_bundle=pki.agent_ca.cert_path)
    assert c.event_log(url) == LOG  # keep-alive connection now open
    with pytest.raises(AgentTlsError):
        c.event_log(url, pin="00" * 32)
    assert c.event_log(url, pin=pki.agent.fingerprint) == LOG


@pytest.mark.parametrize("pin", ["abc", "zz" * 32, ""])
def test_invalid_pin_refused(pki: Pki, serve: Any, pin: str) -> None:
    url = serve(pki.agent)
    with pytest.raises(AgentTlsError):
        client(ca_bundle=pki.agent_ca.cert_path).event_log(url, pin=pin)


def test_pinned_host_over_plain_http_refused(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    with pytest.raises(AgentTlsError):
        client().event_log(url.replace("https://", "http://"), pin=pki.agent.fingerprint)


def test_plain_http_to_tls_agent_fails(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent).replace("https://", "http://")
    with pytest.raises(AgentUnreachableError) as info:
        client(ca_bundle=pki.agent_ca.cert_path).event_log(url)
    assert not isinstance(info.value, AgentResponseError)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_old_tls_versions_refused(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    port = int(url.rsplit(":", 1)[1].strip("/"))
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, pytest.raises(
        (ssl.SSLError, ConnectionError)
    ):
        old.wrap_socket(raw).close()
    modern = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    modern.load_verify_locations(str(pki.agent_ca.cert_path))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, modern.wrap_socket(
        raw, server_hostname="127.0.0.1"
    ) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


# ------------------------------------------------------------------ client certificates


def test_mutual_tls_with_the_right_client_certificate(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent, client_ca=pki.client_ca)
    c = client(ca_bundle=pki.agent_ca.cert_path, client_cert=pki.client.cert_path,
               client_key=pki.client.key_path)
    assert c.event_log(url, pin=pki.agent.fingerprint) == LOG


def test_mutual_tls_without_client_certificate_refused(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent, client_ca=pki.client_ca)
    with pytest.raises(AgentUnreachableError):
        client(ca_bundle=pki.agent_ca.cert_path).event_log(url)


def test_mutual_tls_with_client_certificate_of_another_ca_refused(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent, client_ca=pki.client_ca)
    c = client(ca_bundle=pki.agent_ca.cert_path, client_cert=pki.client_rogue.cert_path,
               client_key=pki.client_rogue.key_path)
    with pytest.raises(AgentUnreachableError):
        c.event_log(url)


def test_allowed_client_cn(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent, client_ca=pki.client_ca, allowed_cn=(SERVER_CN,))
    good = client(ca_bundle=pki.agent_ca.cert_path, client_cert=pki.client.cert_path,
                  client_key=pki.client.key_path)
    assert good.event_log(url) == LOG
    other = client(ca_bundle=pki.agent_ca.cert_path, client_cert=pki.client_other_cn.cert_path,
                   client_key=pki.client_other_cn.key_path)
    with pytest.raises(AgentFaultError) as info:
        other.event_log(url)
    assert info.value.agent_code == "Client.NotAuthorized"


# ------------------------------------------------------------------ pin at registration


def test_fetch_fingerprint_verified(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    assert client(ca_bundle=pki.agent_ca.cert_path).fetch_fingerprint(url) == \
        pki.agent.fingerprint
    with pytest.raises(AgentTlsError):
        client(ca_bundle=pki.rogue_ca.cert_path).fetch_fingerprint(url)
    with pytest.raises(AgentTlsError):
        client().fetch_fingerprint(url)  # system CAs


def test_fetch_fingerprint_trust_on_first_use(pki: Pki, serve: Any) -> None:
    url = serve(pki.rogue_agent)
    fp = client().fetch_fingerprint(url, unsafe_trust_on_first_use=True)
    assert fp == pki.rogue_agent.fingerprint
    assert client().event_log(url, pin=fp) == LOG


def test_fetch_fingerprint_needs_https(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent)
    with pytest.raises(AgentTlsError):
        client().fetch_fingerprint(url.replace("https", "http"), unsafe_trust_on_first_use=True)


def test_fetch_fingerprint_with_client_certificate(pki: Pki, serve: Any) -> None:
    url = serve(pki.agent, client_ca=pki.client_ca)
    c = client(ca_bundle=pki.agent_ca.cert_path, client_cert=pki.client.cert_path,
               client_key=pki.client.key_path)
    assert c.fetch_fingerprint(url) == pki.agent.fingerprint


# ------------------------------------------------------------------ the real agent process


@pytest.mark.swtpm
@pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed")
def test_real_agent_process_over_mutual_tls(
    pki: Pki, swtpm: tuple[str, int], tmp_path: Path  # noqa: F811
) -> None:
    host, port = swtpm
    port_file = tmp_path / "agent.port"
    log_path = tmp_path / "agent.log"
    argv = [
        sys.executable, "-m", "soapattest.agent.main",
        "--tcti", f"swtpm:host={host},port={port}",
        "--listen", "127.0.0.1:0", "--port-file", str(port_file),
        "--tls-cert", str(pki.agent.cert_path), "--tls-key", str(pki.agent.key_path),
        "--tls-client-ca", str(pki.client_ca.cert_path), "--allowed-client-cn", SERVER_CN,
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        url = f"https://127.0.0.1:{int(port_file.read_text())}/"
        good = client(ca_bundle=pki.agent_ca.cert_path, client_cert=pki.client.cert_path,
                      client_key=pki.client.key_path)
        fp = good.fetch_fingerprint(url)
        assert fp == pki.agent.fingerprint
        ident = good.identity(url, pin=fp)
        assert ident.eks and ident.ak_public
        with pytest.raises(AgentUnreachableError):
            client(ca_bundle=pki.agent_ca.cert_path).identity(url)  # no client certificate
        with pytest.raises(AgentTlsError):
            good.identity(url, pin="11" * 32)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(20) == 0, log_path.read_text()
            assert "listening on https://127.0.0.1:" in log_path.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
