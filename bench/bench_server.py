"""Attestation server benchmark (issue 4): SOAP floor vs VerifyQuote / AttestHost, bulk, RSS.

Everything runs in this process through the real WSGI application and a real
SQLite store (the process is "one worker"); agents are benchmark-only load
agents in a child process (software AKs registered by this script straight
into the store - never through a production path). Figures are CPU time of
this process (``time.process_time``: the server's cost per core) and wall time.

    .venv/bin/python bench/bench_server.py [--calls 300] [--hosts 1000] [--postgres]

``--postgres`` runs the same against a throwaway PostgreSQL cluster on loopback
(started with the machine's server binaries, as the tests do) instead of SQLite.
"""

from __future__ import annotations

import argparse
import base64
import io
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lxml import etree
from spyne import Application, ServiceBase, rpc
from spyne.model.binary import ByteArray
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from bench.load_agents import LoadAgents, start
from soapattest.model import (
    Combine,
    EntryKind,
    Host,
    HostIdentity,
    Policy,
    WhitelistEntry,
    WhitelistRef,
)
from soapattest.security.nonces import StoreNonceCache
from soapattest.security.users import ensure_user
from soapattest.security.wssecurity import Authenticator, build_security_header
from soapattest.server import attestation
from soapattest.server.agents import SoapAgentClient
from soapattest.server.config import ServerConfig
from soapattest.server.context import ServerContext, utc_now
from soapattest.server.keys import load_signing_identity
from soapattest.service.app import build_wsgi
from soapattest.store import Store
from soapattest.tpm.eventlog import parse_event_log
from soapattest.verify.appraise import required_selection

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "tests" / "data" / "real" / "eventlogs" / "gotpmtools_rhel8-uefi.bin"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def wsgi_call(app: Any, data: bytes) -> bytes:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "b",
        "SERVER_PORT": "80",
        "CONTENT_TYPE": "text/xml",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.url_scheme": "https",  # as behind TLS: PasswordText tokens are accepted
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": io.StringIO(),
    }
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
    if not status[0].startswith("200"):
        raise RuntimeError(body[:500])
    return body


USER = ("bench", "benchmark password 123")


def envelope(body: str) -> bytes:
    token = etree.tostring(build_security_header(*USER, mode="text")).decode()
    return (
        f'<e:Envelope xmlns:e="{SOAP_ENV}" xmlns:t="urn:soapattest:v1">'
        f"<e:Header>{token}</e:Header><e:Body>{body}</e:Body></e:Envelope>"
    ).encode()


def echo_app(response_size: int) -> Any:
    class Echo(ServiceBase):
        @rpc(ByteArray, _returns=ByteArray)
        def Echo(ctx: Any, payload: Any) -> Any:
            return [b"r" * response_size]

    app = Application(
        [Echo], tns="urn:bench:echo", in_protocol=Soap11(validator="lxml"), out_protocol=Soap11()
    )
    return WsgiApplication(app)


def timed(fn: Callable[[int], None], n: int) -> tuple[float, float]:
    """(CPU seconds per call, wall seconds per call) over ``n`` calls."""
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.process_time() - c0) / n, (time.perf_counter() - w0) / n


def setup(tmp: Path, agents: LoadAgents, base_url: str, db_url: str = "") -> ServerContext:
    config = ServerConfig(
        state_dir=tmp, bulk_concurrency=32, nonce_ttl=3600, database_url=db_url
    )
    store = Store(config.db_url)
    store.upgrade()
    signing = load_signing_identity(None, None, tmp, config.saml_issuer, utc_now())
    ensure_user(store, *USER, ("admin",), actor="bench", now=utc_now())
    ctx = ServerContext(
        authenticator=Authenticator(nonce_cache=StoreNonceCache(store)),
        config=config,
        store=store,
        signing=signing,
        agents=SoapAgentClient(timeout=30, max_response_bytes=1 << 24),
    )
    log = parse_event_log(agents.raw_log)
    now = utc_now()
    entries = {
        WhitelistEntry(EntryKind.EVENT, "sha256", e.pcr, e.digests["sha256"])
        for e in log.events
        if e.extends and e.pcr < 8
    }
    with store.transaction() as tx:
        tx.whitelists.create(
            "golden", tuple(sorted(entries)), description="", actor="bench", now=now
        )
        tx.policies.create(
            Policy("p", 0, Combine.ALL_OF, (WhitelistRef("golden"),), banks=("sha256",)),
            actor="bench",
            now=now,
        )
        for i, tpm in enumerate(agents.hosts):
            name = f"h{i}"
            # Benchmark-only enrolment of a software AK (no production path does this).
            tx.hosts.add(Host(name=name, agent_url=f"{base_url}h{i}/", policy="p"), now)
            tx.hosts.set_identity(
                name,
                HostIdentity(
                    b"-", b"", tpm.ak_public_bytes, tpm.ak_name, now, tpm.qualified_signer
                ),
                now,
            )
    return ctx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster")
    args = ap.parse_args()
    agents = LoadAgents(args.hosts, LOG)
    base_url, proc = start(agents)
    cluster = None
    try:
        db_url = ""
        if args.postgres:
            from tests.pg_fixture import start_cluster

            cluster = start_cluster()
            db_url = cluster.create_database()
        print(f"database: {'PostgreSQL (loopback)' if cluster else 'SQLite (WAL)'}")
        with tempfile.TemporaryDirectory() as d:
            ctx = setup(Path(d), agents, base_url, db_url)
            app = build_wsgi(ctx)
            run(ctx, app, agents, args)
            ctx.close()
    finally:
        proc.terminate()
        if cluster is not None:
            cluster.destroy()


def verify_quote_requests(ctx: ServerContext, agents: LoadAgents, n: int) -> list[bytes]:
    """``n`` VerifyQuote requests for host h0: nonces issued and quotes signed beforehand,
    so that timing them measures the server alone."""
    with ctx.store.transaction(readonly=True) as tx:
        selection = required_selection(tx.policies.get("p"), (tx.whitelists.get("golden"),))
    log_b64 = base64.b64encode(agents.raw_log).decode()
    out: list[bytes] = []
    for _ in range(n):
        nonce = attestation.issue_nonce(ctx, "bench", "h0")
        ev = agents.hosts[0].quote(nonce, selection)
        pcrs = "".join(
            f"<t:pcr><t:bank>{b}</t:bank><t:index>{i}</t:index><t:value>"
            f"{base64.b64encode(v).decode()}</t:value></t:pcr>"
            for b, vals in ev.raw_pcrs.items()
            for i, v in sorted(vals.items())
        )
        out.append(
            envelope(
                f"<t:VerifyQuote><t:host>h0</t:host><t:nonce>{base64.b64encode(nonce).decode()}"
                f"</t:nonce><t:quote><t:attest>{base64.b64encode(ev.attest).decode()}</t:attest>"
                f"<t:signature>{base64.b64encode(ev.signature).decode()}</t:signature>{pcrs}"
                f"</t:quote><t:event_log>{log_b64}</t:event_log></t:VerifyQuote>"
            )
        )
    return out


def run(ctx: ServerContext, app: Any, agents: LoadAgents, args: argparse.Namespace) -> None:
    n = args.calls
    requests_ = verify_quote_requests(ctx, agents, n)
    sample = wsgi_call(app, requests_[0])
    assert b"<tns:status>TRUSTED</tns:status>" in sample, sample[:2000]
    req_size = len(requests_[0])
    resp_size = len(sample)
    echo = echo_app(resp_size)
    payload = base64.b64encode(b"x" * int(req_size * 0.74)).decode()
    echo_req = (
        f'<e:Envelope xmlns:e="{SOAP_ENV}" xmlns:t="urn:bench:echo"><e:Body><t:Echo>'
        f"<t:payload>{payload}</t:payload></t:Echo></e:Body></e:Envelope>"
    ).encode()
    wsgi_call(echo, echo_req)
    echo_cpu, echo_wall = timed(lambda i: wsgi_call(echo, echo_req), n)
    vq_cpu, vq_wall = timed(lambda i: wsgi_call(app, requests_[i + 1]), n - 1)
    attest_reqs = [
        envelope("<t:AttestHost><t:host>h0</t:host></t:AttestHost>") for _ in range(n + 1)
    ]
    wsgi_call(app, attest_reqs[n])
    ah_cpu, ah_wall = timed(lambda i: wsgi_call(app, attest_reqs[i]), n)
    # --- bulk AttestHosts
    names = [f"h{i}" for i in range(len(agents.hosts))]
    bulk = envelope(
        "<t:AttestHosts>" + "".join(f"<t:host>{h}</t:host>" for h in names) + "</t:AttestHosts>"
    )
    c0, w0 = time.process_time(), time.perf_counter()
    out = wsgi_call(app, bulk)
    bulk_cpu, bulk_wall = time.process_time() - c0, time.perf_counter() - w0
    trusted = out.count(b"<tns:status>TRUSTED</tns:status>") // 2  # host and report status
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"request {req_size} B, response {resp_size} B, {n} calls each")
    print(f"{'operation':34} {'CPU ms':>8} {'wall ms':>8} {'per core/s':>11} {'vs floor':>9}")
    rows = [
        ("SOAP floor (bare Spyne echo)", echo_cpu, echo_wall),
        ("VerifyQuote (verify+replay+store)", vq_cpu, vq_wall),
        ("AttestHost (agent over HTTP)", ah_cpu, ah_wall),
    ]
    for label, cpu, wall in rows:
        print(
            f"{label:34} {cpu * 1e3:8.2f} {wall * 1e3:8.2f} {1 / cpu:11.0f} {cpu / echo_cpu:8.2f}x"
        )
    print(
        f"bulk AttestHosts: {len(names)} hosts ({trusted} TRUSTED) in {bulk_wall:.2f} s wall, "
        f"{bulk_cpu:.2f} s CPU -> {len(names) / bulk_wall:.0f} hosts/s, "
        f"{len(names) / bulk_cpu:.0f} hosts per CPU-second"
    )
    print(f"peak RSS of this worker: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
