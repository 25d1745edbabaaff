"""The real-server world: ``soapattest serve`` (gunicorn, SQLite) and simulated swtpm hosts.

Started once per pytest-xdist worker (the session fixture ``real``):

- a :class:`~soapattest.sim.SimCluster` with ``adv-a`` (the golden host),
  ``adv-b`` and ``adv-c`` (other honest TPMs), all booting the same real
  Secure Boot firmware log; tests may start more hosts (reboots);
- the server, trusting the cluster's EK CA, with users ``e2e-admin`` (admin) and
  ``adv-reader`` (reader), PasswordDigest over plain HTTP on loopback;
- ``golden``: ``adv-a`` registered, whitelist ``adv-wl`` captured from it (PCR
  0-7, values and events), policy ``adv-policy`` on pool ``adv`` (every test
  host registers into that pool), ``golden`` attested TRUSTED.

The store is read directly (read-only) for snapshots; everything else goes
through the server: the bundled client, or raw HTTP for malformed requests.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from lxml import etree

from soapattest.errors import SoapAttestError
from soapattest.model import Combine, Policy, TrustReport, TrustStatus, WhitelistRef
from soapattest.security.wssecurity import build_security_header
from soapattest.sim import HostSpec, SimCluster
from soapattest.store import Store
from tests.adversarial.hostile_agent import HostileAgent
from tests.adversarial.support import Outcome, Snapshot, snapshot
from tests.e2e.server_fixture import RunningServer, add_user, run_cluster, run_server

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "urn:soapattest:v1"
POOL = "adv"
POLICY = "adv-policy"
WHITELIST = "adv-wl"
GOLDEN = "golden"
READER_NAME = "adv-reader"
HOSTS = (HostSpec("adv-a"), HostSpec("adv-b"), HostSpec("adv-c"))


@dataclass
class HttpAnswer:
    """A raw HTTP answer of the server."""

    status: int
    body: bytes
    content_type: str

    @property
    def fault(self) -> str | None:
        try:
            root = etree.fromstring(self.body)
        except etree.XMLSyntaxError:
            return None
        code = root.findtext(f".//{{{SOAP_ENV}}}Fault/faultcode")
        return code.split(":", 1)[-1] if code else None

    @property
    def message(self) -> str:
        try:
            root = etree.fromstring(self.body)
        except etree.XMLSyntaxError:
            return self.body[:300].decode(errors="replace")
        return root.findtext(f".//{{{SOAP_ENV}}}Fault/faultstring") or ""

    def outcome(self) -> Outcome:
        assert self.fault is not None, (self.status, self.body[:300])
        return Outcome(fault=self.fault, message=self.message)


@dataclass
class RealWorld:
    """See the module docstring."""

    server: RunningServer
    cluster: SimCluster
    admin: Any  # AttestationClient as the admin
    store: Store
    reader: tuple[str, str]
    _agents: list[HostileAgent] = field(default_factory=list)
    _log_offset: int = 0

    # ------------------------------------------------------------------ World

    def snapshot(self) -> Snapshot:
        return snapshot(self.store)

    def alive(self) -> bool:
        """The server process runs, answers an honest call, and logged no traceback."""
        if not self.server.alive():
            return False
        self.admin.list_hosts(limit=1)
        self.assert_no_traceback()
        return True

    def assert_no_traceback(self) -> None:
        text = self.server.log_path.read_bytes()
        new, self._log_offset = text[self._log_offset :], len(text)
        assert b"Traceback" not in new, new.decode(errors="replace")[-3000:]

    def latest(self, host: str) -> TrustReport | None:
        with self.store.transaction(readonly=True) as tx:
            return tx.reports.latest(host)

    # ------------------------------------------------------------------ calls

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
        """Run a client call; its TrustReport or its fault as an :class:`Outcome`."""
        try:
            result = fn(*args, **kwargs)
        except SoapAttestError as exc:
            return Outcome.of_error(exc)
        if isinstance(result, TrustReport):
            return Outcome.of_report(result)
        return Outcome()

    def register(self, name: str, agent_url: str) -> Outcome:
        return self.call(self.admin.register_host, name, agent_url, pool=POOL)

    @contextlib.contextmanager
    def registered(self, name: str, agent_url: str) -> Iterator[None]:
        """Register ``name`` for the block, then delete it (its TPM is free again)."""
        out = self.register(name, agent_url)
        assert out.fault is None, out
        try:
            yield
        finally:
            with contextlib.suppress(SoapAttestError):
                self.admin.delete_host(name)

    def attest(self, name: str) -> Outcome:
        return self.call(self.admin.attest_host, name)

    def agent(self, *, upstream: str | None = None, soft: Any = None) -> HostileAgent:
        """A hostile agent (closed with the world)."""
        agent = HostileAgent(upstream=upstream, soft=soft)
        self._agents.append(agent)
        return agent

    def url_of(self, sim_host: str) -> str:
        """The current agent URL of a simulated host (it changes when the host reboots)."""
        return self.cluster.host(sim_host).agent_url

    # ------------------------------------------------------------------ raw HTTP

    def security_header(self, user: tuple[str, str] | None) -> str:
        if user is None:
            return ""
        sec = build_security_header(user[0], user[1], mode="digest")
        return etree.tostring(sec).decode()

    def envelope(self, body: str, *, user: tuple[str, str] | None, header: str = "") -> bytes:
        """A SOAP 1.1 request with ``body`` in the Body and a fresh UsernameToken."""
        head = self.security_header(user) + header
        return (
            f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:t="{NS}">'
            f"<soap:Header>{head}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
        ).encode()

    def post(
        self,
        data: bytes | Iterator[bytes],
        *,
        content_type: str = "text/xml; charset=utf-8",
        soap_action: str = '""',
        method: str = "POST",
    ) -> HttpAnswer:
        resp = requests.request(
            method,
            self.server.url,
            data=data,
            timeout=60,
            headers={"Content-Type": content_type, "SOAPAction": soap_action},
        )
        return HttpAnswer(resp.status_code, resp.content, resp.headers.get("Content-Type", ""))

    @property
    def admin_user(self) -> tuple[str, str]:
        assert self.server.username and self.server.password
        return (self.server.username, self.server.password)

    def close(self) -> None:
        for agent in self._agents:
            agent.close()
        self.admin.close()
        self.store.close()


@contextlib.contextmanager
def start_real_world(base: Path) -> Iterator[RealWorld]:
    """The world of the module docstring (stopped at the end of the block)."""
    with (
        run_cluster(base / "sim", HOSTS) as cluster,
        run_server(
            base / "server", cluster, settings={"attestation": {"agent_timeout": "5"}}
        ) as server,
    ):
        reader = (READER_NAME, secrets.token_urlsafe(18))
        add_user(server.config_path, reader[0], reader[1], ("reader",))
        admin = server.client(timeout=60)
        world = RealWorld(server, cluster, admin, Store(server.database_url), reader)
        try:
            admin.register_host(GOLDEN, cluster.host("adv-a").agent_url, pool=POOL)
            admin.import_whitelist_from_host(GOLDEN, WHITELIST, range(8))
            admin.create_policy(
                Policy(POLICY, 0, Combine.ALL_OF, (WhitelistRef(WHITELIST),), banks=("sha256",))
            )
            admin.assign_policy(POLICY, pool=POOL)
            assert admin.attest_host(GOLDEN).status is TrustStatus.TRUSTED
            world.assert_no_traceback()
            yield world
        finally:
            world.close()
