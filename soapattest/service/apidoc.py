"""Generate the API reference (``docs/api.md``) from the committed WSDL and the error tree.

``python -m soapattest.service.apidoc > docs/api.md`` regenerates it; a test
fails when the committed file differs. For every operation: its
documentation, its request and response elements with types and
cardinalities, the fault codes it documents, and an example request envelope
built from the schema. Then every complex type, and the table of fault codes.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from lxml import etree

from soapattest import errors

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XS = "http://www.w3.org/2001/XMLSchema"
TNS = "urn:soapattest:v1"
ROOT = Path(__file__).resolve().parents[2]
COMMITTED_WSDL = ROOT / "wsdl" / "soapattest.wsdl"

_SAMPLES = {
    "xs:string": "text",
    "xs:boolean": "true",
    "xs:integer": "1",
    "xs:unsignedInt": "1",
    "xs:unsignedLong": "1",
    "xs:dateTime": "2026-11-30T12:00:00Z",
    "xs:base64Binary": "AAECAw==",
}


class _Schema:
    def __init__(self, root: etree._Element) -> None:
        schema = root.find(f"{{{WSDL_NS}}}types/{{{XS}}}schema")
        assert schema is not None
        self.complex = {c.get("name"): c for c in schema.findall(f"{{{XS}}}complexType")}
        self.simple = {s.get("name"): s for s in schema.findall(f"{{{XS}}}simpleType")}

    def simple_summary(self, type_name: str) -> str:
        name = type_name.split(":", 1)[-1]
        node = self.simple.get(name)
        if node is None:
            return type_name
        restriction = node.find(f"{{{XS}}}restriction")
        if restriction is None:
            return type_name
        base = restriction.get("base", "")
        facets = []
        enums = [e.get("value") for e in restriction.findall(f"{{{XS}}}enumeration")]
        if enums:
            facets.append("one of " + ", ".join(f"`{e}`" for e in enums))
        for facet in ("minLength", "maxLength", "minInclusive", "maxInclusive", "pattern"):
            el = restriction.find(f"{{{XS}}}{facet}")
            if el is not None:
                facets.append(f"{facet} `{el.get('value')}`")
        return f"{base} ({'; '.join(facets)})" if facets else base

    def base_type(self, type_name: str) -> str:
        name = type_name.split(":", 1)[-1]
        node = self.simple.get(name)
        if node is None:
            return type_name
        restriction = node.find(f"{{{XS}}}restriction")
        return restriction.get("base", type_name) if restriction is not None else type_name

    def elements(self, type_name: str) -> list[etree._Element]:
        node = self.complex.get(type_name.split(":", 1)[-1])
        if node is None:
            return []
        return list(node.iter(f"{{{XS}}}element"))

    def sample(self, type_name: str, indent: str, depth: int = 0) -> list[str]:
        """Lines of a sample body for a complex type (required elements, one repetition)."""
        lines: list[str] = []
        for el in self.elements(type_name):
            if el.get("minOccurs") == "0" or depth > 3:
                continue
            name, typ = el.get("name"), el.get("type", "")
            if typ.split(":", 1)[-1] in self.complex:
                lines.append(f"{indent}<t:{name}>")
                lines += self.sample(typ, indent + "  ", depth + 1)
                lines.append(f"{indent}</t:{name}>")
            else:
                node = self.simple.get(typ.split(":", 1)[-1])
                enum = node.find(f".//{{{XS}}}enumeration") if node is not None else None
                value = (
                    enum.get("value")
                    if enum is not None
                    else _SAMPLES.get(self.base_type(typ), "text")
                )
                if name in ("name", "host", "pool", "policy"):
                    value = "host-001" if name == "host" else f"my-{name}"
                lines.append(f"{indent}<t:{name}>{value}</t:{name}>")
        return lines


def _cardinality(el: etree._Element) -> str:
    lo = el.get("minOccurs", "1")
    hi = el.get("maxOccurs", "1")
    if (lo, hi) == ("1", "1"):
        return "required"
    if (lo, hi) == ("0", "1"):
        return "optional"
    return f"{lo}..{'n' if hi == 'unbounded' else hi}"


def _doc(el: etree._Element) -> str:
    text = el.findtext(f"{{{XS}}}annotation/{{{XS}}}documentation") or ""
    return " ".join(text.split())


def _fault_codes() -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.SoapAttestError):
            code = cls.code
            owner = errors.error_class_for(code)
            if code not in seen:
                seen[code] = " ".join((owner.__doc__ or "").split())
    return sorted(seen.items())


def _element_rows(schema: _Schema, type_name: str) -> list[str]:
    rows = []
    for el in schema.elements(type_name):
        typ = el.get("type", "")
        shown = (
            typ.split(":", 1)[-1]
            if typ.split(":", 1)[-1] in schema.complex
            else (schema.simple_summary(typ))
        )
        rows.append(f"| `{el.get('name')}` | {shown} | {_cardinality(el)} | {_doc(el)} |")
    return rows


def generate(wsdl: bytes | None = None) -> str:
    """The API reference in Markdown."""
    root = etree.fromstring(wsdl or COMMITTED_WSDL.read_bytes())
    schema = _Schema(root)
    port_type = root.find(f"{{{WSDL_NS}}}portType")
    assert port_type is not None
    ops = sorted(port_type.findall(f"{{{WSDL_NS}}}operation"), key=lambda o: o.get("name"))
    out = [
        "# API reference",
        "",
        "Generated from `wsdl/soapattest.wsdl` by `python -m soapattest.service.apidoc`; do not",
        "edit by hand. SOAP 1.1, document/literal wrapped, namespace `urn:soapattest:v1`, one",
        "service `SoapAttest`. Every request must carry a WS-Security UsernameToken (see",
        "docs/security.md). Binary values are base64; times are UTC `xs:dateTime`.",
        "",
        "## Operations",
        "",
        ", ".join(f"[{o.get('name')}](#{o.get('name').lower()})" for o in ops),
        "",
    ]
    for op in ops:
        name = op.get("name")
        doc = " ".join((op.findtext(f"{{{WSDL_NS}}}documentation") or "").split())
        out += [f"### {name}", "", doc, ""]
        out += ["Request:", "", "| element | type | occurs | description |", "|---|---|---|---|"]
        out += _element_rows(schema, name) or ["| (none) | | | |"]
        out += [
            "",
            "Response:",
            "",
            "| element | type | occurs | description |",
            "|---|---|---|---|",
        ]
        out += _element_rows(schema, f"{name}Response") or ["| (none) | | | |"]
        out += [
            "",
            "Example request:",
            "",
            "```xml",
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"',
            '                  xmlns:t="urn:soapattest:v1">',
            "  <soapenv:Header><!-- wsse:Security UsernameToken --></soapenv:Header>",
            "  <soapenv:Body>",
            f"    <t:{name}>",
        ]
        out += schema.sample(name, "      ")
        out += [f"    </t:{name}>", "  </soapenv:Body>", "</soapenv:Envelope>", "```", ""]
    out += ["## Types", ""]
    skip = {o.get("name") for o in ops} | {f"{o.get('name')}Response" for o in ops}
    for type_name in sorted(schema.complex):
        if type_name in skip:
            continue
        node = schema.complex[type_name]
        out += [
            f"### {type_name}",
            "",
            _doc(node),
            "",
            "| element | type | occurs | description |",
            "|---|---|---|---|",
        ]
        out += [*_element_rows(schema, type_name), ""]
    out += [
        "## Fault codes",
        "",
        "Faults are SOAP 1.1 faults; `faultcode` is `soap:<code>`, `faultstring` a sentence.",
        "`Client.*`: the request is wrong or the evidence untrustworthy (do not retry as is);",
        "`Server.*`: the server or a host it depends on failed (retry later).",
        "`Client.SchemaValidationError` comes from schema validation of the request.",
        "",
        "| code | meaning |",
        "|---|---|",
    ]
    out += [f"| `{code}` | {doc} |" for code, doc in _fault_codes()]
    return "\n".join(out) + "\n"


def main() -> None:
    """Write the reference to stdout."""
    sys.stdout.write(generate())


if __name__ == "__main__":
    main()
