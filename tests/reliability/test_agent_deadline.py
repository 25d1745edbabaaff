"""An agent that drips its answer (a byte at a time, each within the per-read timeout)
is cut off after the agent timeout, over HTTP and HTTPS, in the status line or in the
body; an agent that answers in time - at once or slowly - is read in full.

The dripping agents (:mod:`tests.reliability.drip`) give up dripping after a while and
send the rest at once, so without the total deadline the call would *succeed* (late):
the tests fail instead of hanging.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from soapattest.errors import AgentUnreachableError
from soapattest.security.tls import fingerprint
from soapattest.server.agents import SoapAgentClient
from tests.reliability.drip import LOG, Drip, DripAgent, event_log_answer

TIMEOUT = 1.0  # the client's agent timeout in the cut-off tests


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh self-signed certificate, and its pin."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "drip-agent")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return ctx, fingerprint(cert.public_bytes(serialization.Encoding.DER))


@pytest.fixture
def agents() -> Iterator[list[DripAgent]]:
    started: list[DripAgent] = []
    yield started
    for agent in started:
        agent.close()


HEADER_DRIP = Drip(prompt=5, gap=0.1)  # "HTTP/" then the rest of the status line, slowly
BODY_DRIP = Drip(prompt=len(event_log_answer()) - 200, gap=0.1)  # headers at once, the body slowly


@pytest.mark.parametrize("drip", [HEADER_DRIP, BODY_DRIP], ids=["status-line", "body"])
@pytest.mark.parametrize("use_tls", [False, True], ids=["http", "https"])
def test_dripping_agent_is_cut_off(
    drip: Drip, use_tls: bool, tls_pair: tuple[ssl.SSLContext, str], agents: list[DripAgent]
) -> None:
    agent = DripAgent(drip, tls_pair[0] if use_tls else None)
    agents.append(agent)
    client = SoapAgentClient(timeout=TIMEOUT, max_response_bytes=1 << 20)
    with pytest.raises(AgentUnreachableError) as info:
        client.event_log(agent.url, pin=tls_pair[1] if use_tls else None)
    assert type(info.value) is AgentUnreachableError
    assert "did not answer within 1 s" in info.value.message


@pytest.mark.parametrize(
    "drip", [Drip(prompt=1 << 20, gap=0), Drip(prompt=100, gap=0.002)], ids=["at-once", "slowly"]
)
@pytest.mark.parametrize("use_tls", [False, True], ids=["http", "https"])
def test_answer_in_time_is_read(
    drip: Drip, use_tls: bool, tls_pair: tuple[ssl.SSLContext, str], agents: list[DripAgent]
) -> None:
    """Twin: the same answers within the agent timeout are accepted, whole."""
    agent = DripAgent(drip, tls_pair[0] if use_tls else None)
    agents.append(agent)
    client = SoapAgentClient(timeout=20, max_response_bytes=1 << 20)
    assert client.event_log(agent.url, pin=tls_pair[1] if use_tls else None) == LOG
    # The same client (its kept sessions and watchdog) serves a second call too.
    assert client.event_log(agent.url, pin=tls_pair[1] if use_tls else None) == LOG


def test_deadlines_apply_per_call(agents: list[DripAgent]) -> None:
    """Concurrent calls of one client: each dripping one is cut off, each prompt one is
    read in full (the watchdog cuts the socket of the call that overran, no other)."""
    dripping = [DripAgent(BODY_DRIP) for _ in range(3)]
    prompt = [DripAgent(Drip(prompt=100, gap=0.002)) for _ in range(3)]
    agents.extend(dripping + prompt)
    client = SoapAgentClient(timeout=3, max_response_bytes=1 << 20)

    def fetch(agent: DripAgent) -> bytes | str:
        try:
            return client.event_log(agent.url)
        except AgentUnreachableError as exc:
            return exc.message

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(fetch, dripping + prompt))
    assert all(isinstance(r, str) and "did not answer within 3 s" in r for r in results[:3])
    assert results[3:] == [LOG] * 3
