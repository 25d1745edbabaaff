"""Interoperability: the same workflow (register, import a whitelist, create and assign a
policy, attest, fetch the report and the signed assertion, provoke faults) through three
independent SOAP stacks generated from the WSDL: the bundled zeep client, suds
(Python, from the live ``?wsdl``) and node-soap (JavaScript, from the committed file).

Each stack works on its own host and pool; the reports they fetch are cross-checked with
the bundled client. node-soap is installed from the npm registry into a temporary
directory; the test skips only when node or npm is not installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from suds import WebFault
from suds.client import Client as SudsClient
from suds.sax.date import DateTime as SudsDateTime
from suds.wsse import Security, UsernameToken

from soapattest.client import AttestationClient
from soapattest.errors import AlreadyExistsError, UnknownHostError
from soapattest.model import Combine, Policy, TrustStatus, WhitelistRef
from soapattest.server.saml import verify_assertion
from tests.conftest import ROOT
from tests.e2e.server_fixture import RunningServer, attest_server  # noqa: F401

pytestmark = pytest.mark.swtpm

WSDL_FILE = ROOT / "wsdl" / "soapattest.wsdl"
PCRS = list(range(8))
NODE_SOAP_VERSION = "1"

NODE_SCRIPT = r"""
const soap = require('soap');
const [wsdl, url, host, agent, user, password] = process.argv.slice(2);
const bodyFault = (e) => {
  const f = e && e.root && e.root.Envelope && e.root.Envelope.Body && e.root.Envelope.Body.Fault;
  return f ? {code: f.faultcode, string: f.faultstring} : {error: String(e && e.message)};
};
(async () => {
  const client = await soap.createClientAsync(wsdl, {endpoint: url});
  if (user) {
    client.setSecurity(new soap.WSSecurity(user, password, {passwordType: 'PasswordDigest'}));
  }
  const call = async (op, args) => (await client[op + 'Async'](args))[0];
  const fault = async (op, args) => {
    try { await call(op, args); return null; } catch (e) { return bodyFault(e); }
  };
  const out = {operations: Object.keys(client.describe().SoapAttest.SoapAttest).length};
  out.register = (await call('RegisterHost', {name: host, agent_url: agent, pool: 'node-pool',
    labels: [{key: 'stack', value: 'node-soap'}]})).host;
  out.whitelist = (await call('ImportWhitelistFromHost', {host: host, name: 'node-wl',
    pcr: [0, 1, 2, 3, 4, 5, 6, 7], bank: ['sha256'], kind: ['pcr', 'event']})).whitelist;
  out.policy = (await call('CreatePolicy', {policy: {name: 'node-policy', combine: 'ALL_OF',
    whitelist: [{name: 'node-wl'}], bank: ['sha256']}})).policy;
  out.assigned = (await call('AssignPolicy', {policy: 'node-policy', pool: 'node-pool'})).assigned;
  out.attest = (await call('AttestHost', {host: host})).report;
  out.report = (await call('GetTrustReport', {report_id: out.attest.report_id})).report;
  out.assertion = (await call('GetTrustAssertion', {host: host})).assertion;
  out.certificate = (await call('GetSigningCertificate', {})).certificate;
  out.unknown_host = await fault('GetHost', {name: 'no-such-host'});
  out.duplicate = await fault('RegisterHost', {name: host, agent_url: agent});
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  console.error('node-soap workflow failed:', e && e.message, e && e.body);
  process.exit(3);
});
"""


def as_list(value: Any) -> list[Any]:
    """node-soap and suds give a lone repeated element as an object, several as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def bundled(attest_server: RunningServer) -> Iterator[AttestationClient]:  # noqa: F811
    client = attest_server.client()
    yield client
    client.close()


# ------------------------------------------------------------------ bundled zeep client


def test_bundled_client_workflow(
    attest_server: RunningServer,  # noqa: F811
    bundled: AttestationClient,
) -> None:
    agent = attest_server.cluster.host("host-1").agent_url
    host = bundled.register_host("host-1", agent, pool="zeep-pool", labels={"stack": "zeep"})
    assert host.labels == {"stack": "zeep"}
    wl = bundled.import_whitelist_from_host("host-1", "zeep-wl", PCRS)
    assert wl.entries
    bundled.create_policy(Policy("zeep-policy", 0, Combine.ALL_OF, (WhitelistRef("zeep-wl"),)))
    assert bundled.assign_policy("zeep-policy", pool="zeep-pool")
    report = bundled.attest_host("host-1")
    assert report.status is TrustStatus.TRUSTED
    assert bundled.get_trust_report(report.report_id).checks == report.checks
    signed = bundled.get_trust_assertion("host-1")
    verified = verify_assertion(
        signed.xml, bundled.get_signing_certificate(), now=datetime.now(UTC)
    )
    assert (verified.host, verified.trusted) == ("host-1", True)
    with pytest.raises(UnknownHostError) as unknown:
        bundled.get_host("no-such-host")
    assert unknown.value.code == "Client.UnknownHost"
    with pytest.raises(AlreadyExistsError):
        bundled.register_host("host-1", agent)


# ------------------------------------------------------------------ suds


class Suds:
    """suds generated from the live WSDL, pointed at the server. suds sends the
    UsernameToken it is given as it is, so every call gets a fresh PasswordDigest token
    (nonce, created, Base64(SHA-1(nonce + created + password))) built here."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.client = SudsClient(
            server.wsdl_url, location=server.url, cache=None, faults=True, timeout=60
        )

    def _token(self) -> Security:
        security = Security()
        if self.server.username and self.server.password:
            nonce = os.urandom(16)
            created = datetime.now(UTC)
            created_text = str(SudsDateTime(created))
            digest = hashlib.sha1(  # noqa: S324 - the WSS UsernameToken Profile's digest
                nonce + created_text.encode() + self.server.password.encode()
            ).digest()
            token = UsernameToken(self.server.username, self.server.password)
            token.setnonce(base64.b64encode(nonce).decode())
            token.setnonceencoding(True)
            token.setcreated(created)
            token.setpassworddigest(base64.b64encode(digest).decode())
            security.tokens.append(token)
        return security

    def __call__(self, operation: str, **kwargs: Any) -> Any:
        self.client.set_options(wsse=self._token())
        return getattr(self.client.service, operation)(**kwargs)

    def fault(self, operation: str, **kwargs: Any) -> tuple[str, str]:
        with pytest.raises(WebFault) as info:
            self(operation, **kwargs)
        return str(info.value.fault.faultcode), str(info.value.fault.faultstring)


@pytest.fixture(scope="module")
def suds(attest_server: RunningServer) -> Suds:  # noqa: F811
    return Suds(attest_server)


def test_suds_sees_every_operation(suds: Suds) -> None:
    methods = suds.client.wsdl.services[0].ports[0].methods
    assert len(methods) == 34
    assert {"RegisterHost", "AttestHost", "GetTrustReport", "GetTrustAssertion"} <= set(methods)


def test_suds_workflow(
    attest_server: RunningServer,  # noqa: F811
    suds: Suds,
    bundled: AttestationClient,
) -> None:
    agent = attest_server.cluster.host("host-2").agent_url
    label = suds.client.factory.create("ns0:Label")
    label.key, label.value = "stack", "suds"
    host = suds("RegisterHost", name="host-2", agent_url=agent, pool="suds-pool", labels=[label])
    assert host.name == "host-2" and host.pool == "suds-pool"
    assert base64.b64decode(host.ak_name) == bundled.get_host("host-2").ak_name
    wl = suds(
        "ImportWhitelistFromHost",
        host="host-2",
        name="suds-wl",
        pcr=PCRS,
        bank=["sha256"],
        kind=["pcr", "event"],
    )
    assert int(wl.entry_count) == len(as_list(wl.entry)) > 0
    policy = suds.client.factory.create("ns0:Policy")
    ref = suds.client.factory.create("ns0:WhitelistRef")
    ref.name = "suds-wl"
    policy.name, policy.combine, policy.whitelist, policy.bank = (
        "suds-policy",
        "ALL_OF",
        [ref],
        ["sha256"],
    )
    created = suds("CreatePolicy", policy=policy)
    assert (created.name, int(created.version)) == ("suds-policy", 1)
    assert suds("AssignPolicy", policy="suds-policy", pool="suds-pool") is True
    report = suds("AttestHost", host="host-2")
    assert report.status == "TRUSTED"
    fetched = suds("GetTrustReport", report_id=report.report_id)
    ours = bundled.get_trust_report(int(report.report_id))
    assert (fetched.host, fetched.status) == (ours.host, ours.status.value)
    assert [c.id for c in as_list(fetched.check)] == [c.id for c in ours.checks]
    assert {int(p.index): base64.b64decode(p.value) for p in as_list(fetched.pcr)} == dict(
        ours.pcrs["sha256"]
    )
    signed = suds("GetTrustAssertion", host="host-2")
    cert = str(suds("GetSigningCertificate")).encode()
    verified = verify_assertion(str(signed.assertion).encode(), cert, now=datetime.now(UTC))
    assert (verified.host, verified.trusted) == ("host-2", True)
    code, text = suds.fault("GetHost", name="no-such-host")
    assert code.endswith("Client.UnknownHost") and "no-such-host" in text
    code, _ = suds.fault("RegisterHost", name="host-2", agent_url=agent)
    assert code.endswith("Client.AlreadyExists")
    bulk = suds("AttestHosts", host=["host-2", "no-such-host"])
    assert [(b.host, getattr(b, "fault_code", None)) for b in bulk] == [
        ("host-2", None),
        ("no-such-host", "Client.UnknownHost"),
    ]


# ------------------------------------------------------------------ node-soap


@pytest.fixture(scope="module")
def node_soap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with node-soap installed from the npm registry and the workflow script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node-soap interop needs node and npm, which are not installed")
    base = tmp_path_factory.mktemp("node-soap")
    done = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"soap@{NODE_SOAP_VERSION}",
        ],
        cwd=base,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"npm install soap failed:\n{done.stderr[-2000:]}"
    (base / "workflow.js").write_text(NODE_SCRIPT)
    return base


def test_node_soap_workflow(
    attest_server: RunningServer,  # noqa: F811
    node_soap: Path,
    bundled: AttestationClient,
) -> None:
    agent = attest_server.cluster.host("host-3").agent_url
    done = subprocess.run(
        [
            "node",
            "workflow.js",
            str(WSDL_FILE),
            attest_server.url,
            "host-3",
            agent,
            attest_server.username or "",
            attest_server.password or "",
        ],
        cwd=node_soap,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["operations"] == 34
    assert (out["register"]["name"], out["register"]["pool"]) == ("host-3", "node-pool")
    assert as_list(out["register"]["labels"]) == [{"key": "stack", "value": "node-soap"}]
    assert base64.b64decode(out["register"]["ak_name"]) == bundled.get_host("host-3").ak_name
    assert int(out["whitelist"]["entry_count"]) == len(as_list(out["whitelist"]["entry"]))
    assert out["policy"]["name"] == "node-policy" and out["assigned"] is True
    # host-3 boots a tampered event, but its whitelist was captured from itself: TRUSTED
    assert out["attest"]["status"] == out["report"]["status"] == "TRUSTED"
    ours = bundled.get_trust_report(int(out["report"]["report_id"]))
    assert (ours.host, ours.status, ours.policy) == ("host-3", TrustStatus.TRUSTED, "node-policy")
    assert [c["id"] for c in as_list(out["report"]["check"])] == [c.id for c in ours.checks]
    verified = verify_assertion(
        out["assertion"]["assertion"].encode(), out["certificate"].encode(), now=datetime.now(UTC)
    )
    assert (verified.host, verified.trusted) == ("host-3", True)
    assert out["unknown_host"]["code"].endswith("Client.UnknownHost")
    assert "no-such-host" in out["unknown_host"]["string"]
    assert out["duplicate"]["code"].endswith("Client.AlreadyExists")
