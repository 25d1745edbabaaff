"""The committed WSDL is exactly what the code serves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from lxml import etree
from spyne.server.wsgi import WsgiApplication

from soapattest.service.app import build_application
from soapattest.service.wsdl import PLACEHOLDER_URL, generate_wsdl
from soapattest.wsdl_canonical import canonical_wsdl

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "wsdl" / "soapattest.wsdl"
WSDL = "http://schemas.xmlsoap.org/wsdl/"


def _get_wsdl(app: Any) -> bytes:
    environ = {
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": "wsdl",
        "PATH_INFO": "/",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8080",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "HTTP_HOST": "localhost:8080",
    }
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, *a: status.append(s)))
    assert status[0].startswith("200")
    return body


def test_generated_wsdl_equals_the_committed_file() -> None:
    assert generate_wsdl() == COMMITTED.read_bytes(), (
        "wsdl/soapattest.wsdl is stale: python -m soapattest.service.wsdl > wsdl/soapattest.wsdl"
    )


def test_served_wsdl_equals_the_committed_file() -> None:
    live = _get_wsdl(WsgiApplication(build_application(None)))
    assert canonical_wsdl(live, location=PLACEHOLDER_URL) == COMMITTED.read_bytes()
    # positive twin of the comparison: the live address differs before canonicalisation
    assert canonical_wsdl(live, location=None) != canonical_wsdl(live, location="http://x/")


def test_wsdl_is_document_literal_with_one_service_and_documented_operations() -> None:
    root = etree.fromstring(COMMITTED.read_bytes())
    services = root.findall(f"{{{WSDL}}}service")
    assert [s.get("name") for s in services] == ["SoapAttest"]
    ops = root.findall(f"{{{WSDL}}}portType/{{{WSDL}}}operation")
    names = {op.get("name") for op in ops}
    assert {"RegisterHost", "AttestHost", "AttestHosts", "PollHosts", "VerifyQuote",
            "ImportWhitelistFromHost", "CreatePolicy", "CheckPlacement",
            "GetTrustAssertion", "ListTrustReports"} <= names
    undocumented = [op.get("name") for op in ops
                    if not (op.findtext(f"{{{WSDL}}}documentation") or "").strip()]
    assert undocumented == []
    soap = "http://schemas.xmlsoap.org/wsdl/soap/"
    styles = {b.get("style") for b in root.iter(f"{{{soap}}}binding")}
    assert styles == {"document"}
    uses = {b.get("use") for b in root.iter(f"{{{soap}}}body")}
    assert uses == {"literal"}


def test_api_reference_is_generated_from_the_committed_wsdl() -> None:
    from soapattest.service.apidoc import generate

    text = generate()
    assert (ROOT / "docs" / "api.md").read_text() == text, (
        "docs/api.md is stale: python -m soapattest.service.apidoc > docs/api.md"
    )
    root = etree.fromstring(COMMITTED.read_bytes())
    for op in root.findall(f"{{{WSDL}}}portType/{{{WSDL}}}operation"):
        assert f"### {op.get('name')}\n" in text
    assert "| `Client.UnknownHost` |" in text
