"""Direct dispatch of the hot operations against Spyne's path, over one real SQLite store.

The same requests go to the service as built (hot operations served by the
compiled codec) and to the same Spyne application without direct dispatch;
answers must be the same bytes (report ids and times aside where a call
creates a report).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from spyne.server.wsgi import WsgiApplication

from soapattest.model import (
    Check,
    CheckStatus,
    Combine,
    EntryKind,
    Host,
    HostIdentity,
    Policy,
    TrustReport,
    TrustStatus,
    WhitelistEntry,
    WhitelistRef,
)
from soapattest.security.xmlguard import XmlGuard
from soapattest.service.app import build_application
from soapattest.service.direct import HOT_OPERATIONS, DirectDispatch
from soapattest.service.types import NS
from tests.integration.service_harness import READER, InProcessService, Response


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[InProcessService]:
    s = InProcessService(tmp_path)
    now = s.ctx.clock()
    with s.ctx.store.transaction() as tx:
        tx.whitelists.create(
            "wl", (WhitelistEntry(EntryKind.PCR, "sha256", 0, bytes(32)),), description="",
            actor="t", now=now,
        )
        tx.policies.create(Policy("pol", 0, Combine.ALL_OF, (WhitelistRef("wl"),)), actor="t",
                           now=now)
        tx.hosts.add(Host(name="h1", agent_url="http://127.0.0.1:1/", policy="pol"), now)
        tx.hosts.set_identity(
            "h1", HostIdentity(b"ek", b"", b"ak", b"\x00\x0b" + bytes(32), now), now
        )
        tx.reports.add(
            TrustReport(
                "h1",
                TrustStatus.UNTRUSTED,
                (
                    Check("quote.signature", "quote", CheckStatus.PASS, "ok"),
                    Check("whitelist.pcr", "whitelist:wl", CheckStatus.FAIL, "PCR 0 <differs>",
                          expected="00" * 32, actual="11" * 32, pcr=0, bank="sha256"),
                ),
                now - timedelta(hours=1),
                policy="pol",
                policy_version=1,
                whitelists=(("wl", 1),),
                pcrs={"sha256": {0: b"\x11" * 32}},
                reset_count=3,
                clock=123456,
                event_log_sha256=b"\x22" * 32,
            )
        )
    yield s
    s.close()


def spyne_only(svc: InProcessService) -> Any:
    app = build_application(svc.ctx)
    return XmlGuard(WsgiApplication(app), max_bytes=svc.config.max_request_bytes,
                    service_namespace=NS)


def both(svc: InProcessService, body: str, **kw: Any) -> tuple[Response, Response]:
    direct = svc.app
    try:
        a = svc.call(body, **kw)
        svc.app = spyne_only(svc)
        b = svc.call(body, **kw)
    finally:
        svc.app = direct
    return a, b


READ_ONLY_OR_REFUSED = [
    ("stored report", "<t:GetTrustReport><t:report_id>1</t:report_id></t:GetTrustReport>", {}),
    ("missing report", "<t:GetTrustReport><t:report_id>99</t:report_id></t:GetTrustReport>", {}),
    ("schema", "<t:GetTrustReport><t:report_id>-1</t:report_id></t:GetTrustReport>", {}),
    ("schema name", "<t:AttestHost><t:host>no such!</t:host></t:AttestHost>", {}),
    ("anonymous", "<t:AttestHost><t:host>h1</t:host></t:AttestHost>", {"user": None}),
    ("wrong password", "<t:AttestHost><t:host>h1</t:host></t:AttestHost>",
     {"user": ("admin-user", "not the password")}),
    ("role", "<t:AttestHost><t:host>h1</t:host></t:AttestHost>", {"user": READER}),
    ("reader may read", "<t:GetTrustReport><t:report_id>1</t:report_id></t:GetTrustReport>",
     {"user": READER}),
    ("unknown host", "<t:AttestHost><t:host>ghost</t:host></t:AttestHost>", {}),
    ("twice", "<t:AttestHosts><t:host>h1</t:host><t:host>h1</t:host></t:AttestHosts>", {}),
    ("nonce unknown host", "<t:IssueNonce><t:host>ghost</t:host></t:IssueNonce>", {}),
    ("poll max_age", "<t:PollHosts><t:host>h1</t:host><t:max_age>99999999</t:max_age>"
     "</t:PollHosts>", {}),
]


@pytest.mark.parametrize(
    ("body", "kw"), [(b, k) for _, b, k in READ_ONLY_OR_REFUSED],
    ids=[n for n, _, _ in READ_ONLY_OR_REFUSED],
)
def test_direct_answers_are_spynes_bytes(svc: InProcessService, body: str, kw: Any) -> None:
    a, b = both(svc, body, **kw)
    assert (a.status, a.body) == (b.status, b.body)


def test_the_stored_report_comes_back_whole(svc: InProcessService) -> None:
    r = svc.call("<t:GetTrustReport><t:report_id>1</t:report_id></t:GetTrustReport>")
    assert r.status == 200
    assert r.find(".//t:report/t:status").text == "UNTRUSTED"
    fail = [c for c in r.root.iter(f"{{{NS}}}check") if c.findtext(f"{{{NS}}}status") == "FAIL"]
    assert [c.findtext(f"{{{NS}}}reason") for c in fail] == ["PCR 0 <differs>"]
    assert r.find(".//t:report/t:reset_count").text == "3"


def _normalised(body: bytes) -> bytes:
    body = re.sub(rb"<tns:report_id>\d+</tns:report_id>", b"<tns:report_id/>", body)
    return re.sub(rb"<tns:created_at>[^<]+</tns:created_at>", b"<tns:created_at/>", body)


@pytest.mark.parametrize(
    "body",
    [
        "<t:AttestHost><t:host>h1</t:host></t:AttestHost>",
        "<t:AttestHosts><t:host>h1</t:host><t:host>ghost</t:host></t:AttestHosts>",
        "<t:PollHosts><t:host>h1</t:host><t:max_age>0</t:max_age></t:PollHosts>",
    ],
)
def test_attestations_answer_as_spyne_does(svc: InProcessService, body: str) -> None:
    """The agent is down: each path stores an UNKNOWN report; the answers differ only in
    report id and time - and the twin check shows the normalisation hides nothing else."""
    a, b = both(svc, body)
    assert a.status == b.status == 200
    assert a.body != b.body
    assert _normalised(a.body) == _normalised(b.body)
    assert b"<tns:status>UNKNOWN</tns:status>" in a.body
    assert _normalised(a.body.replace(b"UNKNOWN", b"TRUSTED")) != _normalised(b.body)


def test_only_hot_operations_bypass_spyne(svc: InProcessService) -> None:
    calls: list[str] = []

    def fallback(environ: dict[str, Any], start_response: Any) -> Any:
        calls.append(environ["soapattest.operation"])
        return spyne(environ, start_response)

    spyne = WsgiApplication(build_application(svc.ctx))
    svc.app = XmlGuard(
        DirectDispatch(fallback, build_application(svc.ctx)),
        max_bytes=svc.config.max_request_bytes, service_namespace=NS,
    )
    hot = svc.call("<t:GetTrustReport><t:report_id>1</t:report_id></t:GetTrustReport>")
    cold = svc.call("<t:GetHost><t:name>h1</t:name></t:GetHost>")
    assert hot.status == cold.status == 200
    assert calls == ["GetHost"]
    assert "GetHost" not in HOT_OPERATIONS and "GetTrustReport" in HOT_OPERATIONS
