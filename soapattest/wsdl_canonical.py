"""Canonical (diffable) form of a Spyne-generated WSDL, shared by the agent and the server.

Spyne emits schema types in hash order (it changes with PYTHONHASHSEED), so
:func:`canonical_wsdl` sorts the schema children (simple types, complex types,
elements, each by name), pretty-prints, and can replace the SOAP address.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

_XS = "{http://www.w3.org/2001/XMLSchema}"
_SOAP_ADDRESS = "{http://schemas.xmlsoap.org/wsdl/soap/}address"
_ORDER = {f"{_XS}import": 0, f"{_XS}simpleType": 1, f"{_XS}complexType": 2, f"{_XS}element": 3}


def canonical_wsdl(document: bytes, *, location: str | None = None) -> bytes:
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


def generate_wsdl(app: Any, url: str) -> bytes:
    """The WSDL of Spyne application ``app`` as served over HTTP, canonical, address ``url``."""
    from spyne.interface.wsdl import Wsdl11
    from spyne.server.wsgi import WsgiApplication

    WsgiApplication(app)  # binds the HTTP transport URI, as when serving
    wsdl = Wsdl11(app.interface)
    wsdl.build_interface_document(url)
    return canonical_wsdl(wsdl.get_interface_document(), location=url)
