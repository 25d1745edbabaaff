"""Generate the trust agent's WSDL from the code, in a stable (diffable) form.

``python -m soapattest.agent.wsdl > wsdl/agent.wsdl`` regenerates the
committed file; ``tests/unit/test_agent_wsdl.py`` fails when the two differ.

Spyne emits schema types in hash order (it changes with PYTHONHASHSEED), so
:func:`canonical_wsdl` sorts the schema children (simple types, complex types,
elements, each by name) and pretty-prints; the committed file uses the
placeholder address :data:`PLACEHOLDER_URL`.
"""

from __future__ import annotations

import sys

from lxml import etree

PLACEHOLDER_URL = "http://localhost:9290/"
_XS = "{http://www.w3.org/2001/XMLSchema}"
_SOAP_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"
_ORDER = {f"{_XS}import": 0, f"{_XS}simpleType": 1, f"{_XS}complexType": 2, f"{_XS}element": 3}


def canonical_wsdl(document: bytes, *, location: str | None = PLACEHOLDER_URL) -> bytes:
    """``document`` with its schema children sorted, pretty-printed, UTF-8.

    ``location`` replaces every soap:address location (``None`` keeps them),
    so a WSDL fetched from a live agent compares equal to the committed one.
    """
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(document, parser)
    for schema in root.iter(f"{_XS}schema"):
        children = list(schema)
        for child in children:
            schema.remove(child)
        children.sort(key=lambda c: (_ORDER.get(c.tag, 9), c.get("name") or ""))
        schema.extend(children)
    if location is not None:
        for address in root.iter(_SOAP_ADDRESS):
            address.set("location", location)
    return bytes(etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8"))


def generate_wsdl(url: str = PLACEHOLDER_URL) -> bytes:
    """The agent's WSDL as served over HTTP, in canonical form, with address ``url``."""
    from spyne.interface.wsdl import Wsdl11
    from spyne.server.wsgi import WsgiApplication

    from soapattest.agent.service import build_application

    app = build_application(None)
    WsgiApplication(app)  # binds the HTTP transport URI, as when serving
    wsdl = Wsdl11(app.interface)
    wsdl.build_interface_document(url)
    return canonical_wsdl(wsdl.get_interface_document(), location=url)


def main() -> None:
    """Write the canonical WSDL to stdout."""
    sys.stdout.buffer.write(generate_wsdl())


if __name__ == "__main__":
    main()
