"""The client ships the server's WSDL: its copy must stay byte-identical to the committed
``wsdl/soapattest.wsdl`` (which the service's drift test keeps equal to the code).
Refresh it with ``cp wsdl/soapattest.wsdl soapattest/client/wsdl/soapattest.wsdl``."""

from __future__ import annotations

from lxml import etree

from soapattest.client import WSDL_PATH
from soapattest.client.connection import BINDING
from tests.conftest import ROOT

COMMITTED = ROOT / "wsdl" / "soapattest.wsdl"
WSDL_NS = "{http://schemas.xmlsoap.org/wsdl/}"


def test_client_copy_is_the_committed_wsdl() -> None:
    assert WSDL_PATH.read_bytes() == COMMITTED.read_bytes(), (
        "soapattest/client/wsdl/soapattest.wsdl is stale: "
        "cp wsdl/soapattest.wsdl soapattest/client/wsdl/soapattest.wsdl"
    )


def test_client_copy_is_inside_the_package() -> None:
    package = ROOT / "soapattest" / "client"
    assert WSDL_PATH.resolve().is_relative_to(package.resolve())
    assert "soapattest.client = wsdl/*.wsdl" in (ROOT / "setup.cfg").read_text()


def test_binding_the_client_uses_is_in_the_wsdl() -> None:
    root = etree.fromstring(WSDL_PATH.read_bytes())
    namespace = root.get("targetNamespace")
    names = {f"{{{namespace}}}{b.get('name')}" for b in root.iter(f"{WSDL_NS}binding")}
    assert BINDING in names


def test_wsdl_needs_no_network() -> None:
    # no import or include that zeep would have to fetch (soap:address is overridden)
    root = etree.fromstring(WSDL_PATH.read_bytes())
    fetched = [
        el.tag
        for el in root.iter()
        if el.get("schemaLocation") or (el.get("location") and not el.tag.endswith("address"))
    ]
    assert fetched == []
    assert [el.get("location") for el in root.iter() if el.tag.endswith("}address")] == [
        "http://localhost:8080/"
    ]
