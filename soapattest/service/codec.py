"""A compiled codec for the service's wire types: request arguments in, responses out.

Spyne's generic XML protocol walks every value through layers of coroutines
and attribute lookups; serialising one trust report cost more than the whole
appraisal. This codec is built once per message class from the *same* Spyne
type definitions that generate the WSDL (so what it reads and writes cannot
drift from the published contract) into a flat list of fields per class; it
reads requests from the lxml tree the XML guard parsed and writes responses as
escaped text.

What it covers is what the service's types use: ``Unicode`` (with or without
an enumeration), integers, ``Boolean``, ``DateTime`` (output only),
``ByteArray`` (base64Binary) and nested ``ComplexModel`` classes, each field
single or repeated. Building a codec for a class with anything else raises
:class:`UnsupportedType`, so a new wire type cannot be half-handled silently.

Input is read only after the request validated against the service's XML
Schema (see :mod:`soapattest.service.direct`): element order, cardinality and
lexical forms are already guaranteed, so reading is a straight mapping.
Differential tests compare both directions with Spyne's own protocol.
"""

from __future__ import annotations

import binascii
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lxml import etree
from spyne.model.binary import ByteArray
from spyne.model.complex import ComplexModelBase
from spyne.model.primitive import Boolean, DateTime, Integer, Unicode

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ENV_PREFIX = "soap11env"  # the prefixes Spyne writes, kept so both paths emit the same bytes
TNS_PREFIX = "tns"

STR, INT, BOOL, DATETIME, BYTES, COMPLEX = "str", "int", "bool", "datetime", "bytes", "complex"


class UnsupportedType(TypeError):
    """A wire type this codec does not handle (its operations stay on Spyne's path)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One element of a complex type, flattened for reading and writing."""

    name: str  # attribute on the Spyne object
    tag: str  # Clark name of the element
    kind: str
    repeated: bool
    cls: Any  # the Spyne class (for COMPLEX: the nested class)


def kind_of(spyne_type: Any) -> str:
    """The codec kind of a Spyne type, or UnsupportedType."""
    if isinstance(spyne_type, type):
        if issubclass(spyne_type, ComplexModelBase):
            return COMPLEX
        if issubclass(spyne_type, Boolean):
            return BOOL
        if issubclass(spyne_type, Integer):
            return INT
        if issubclass(spyne_type, DateTime):
            return DATETIME
        if issubclass(spyne_type, ByteArray):
            return BYTES
        if issubclass(spyne_type, Unicode):
            return STR
    raise UnsupportedType(f"no codec for wire type {spyne_type!r}")


def _repeated(spyne_type: Any) -> bool:
    max_occurs = spyne_type.Attributes.max_occurs
    return bool(max_occurs == "unbounded" or math.isinf(float(max_occurs)) or max_occurs > 1)


class Codec:
    """Flattened field lists of Spyne complex classes, built lazily and cached."""

    def __init__(self) -> None:
        self._fields: dict[Any, tuple[Field, ...]] = {}
        self._tag_text: dict[str, tuple[str, str, str]] = {}  # Clark tag -> open, close, empty

    def fields(self, cls: Any) -> tuple[Field, ...]:
        """The fields of complex class ``cls`` in schema order (UnsupportedType)."""
        known = self._fields.get(cls)
        if known is not None:
            return known
        ns = cls.get_namespace()
        out = []
        for name, sub in cls.get_flat_type_info(cls).items():
            kind = kind_of(sub)
            out.append(Field(name, f"{{{ns}}}{name}", kind, _repeated(sub), sub))
        fields = tuple(out)
        self._fields[cls] = fields
        for f in fields:  # build (and check) nested classes now, not on first use
            if f.kind == COMPLEX and f.cls not in self._fields:
                self.fields(f.cls)
        return fields

    def check_readable(self, cls: Any) -> None:
        """UnsupportedType unless every field of ``cls`` (nested too) can be read."""
        for f in self.fields(cls):
            if f.kind == DATETIME:
                raise UnsupportedType(f"{cls.__name__}.{f.name}: dateTime input is Spyne's job")
            if f.kind == COMPLEX:
                self.check_readable(f.cls)

    # ------------------------------------------------------------------ reading

    def read(self, element: etree._Element, cls: Any) -> Any:
        """An instance of ``cls`` from a schema-valid ``element`` (the same values Spyne's
        protocol produces: absent fields None, base64Binary as a tuple of one chunk)."""
        fields = {f.tag: f for f in self.fields(cls)}
        values: dict[str, Any] = {}
        for child in element:
            if not isinstance(child.tag, str):  # comments
                continue
            f = fields[child.tag]
            value = self._read_value(child, f)
            if f.repeated:
                values.setdefault(f.name, []).append(value)
            else:
                values[f.name] = value
        inst = cls.get_deserialization_instance(None)  # the original class of a customized one
        for name, value in values.items():
            setattr(inst, name, value)
        return inst

    def read_args(self, element: etree._Element, in_message: Any) -> list[Any]:
        """The operation arguments in declaration order from its wrapper ``element``."""
        inst = self.read(element, in_message)
        return [getattr(inst, f.name, None) for f in self.fields(in_message)]

    def _read_value(self, el: etree._Element, f: Field) -> Any:
        if f.kind == COMPLEX:
            return self.read(el, f.cls)
        text = el.text
        if f.kind == STR:  # as Spyne reads them: an empty string is "", empty binary None
            return text if text is not None else ""
        if text is None:
            return None
        if f.kind == INT:
            return int(text.strip())
        if f.kind == BOOL:
            return text.strip() in ("true", "1")
        if f.kind == BYTES:
            return (binascii.a2b_base64(text),)
        raise UnsupportedType(f"cannot read {f.kind}")

    # ------------------------------------------------------------------ writing
    #
    # Responses are written as text: every field is an element of the service namespace
    # (prefix ``tns``), values are escaped as libxml2 escapes them, and characters XML
    # cannot carry are refused with lxml's own error - the same document lxml would
    # build, several times faster for a report of a few hundred elements.

    def fragment(self, cls: Any, inst: Any, tns: str) -> str:
        """The fields of ``inst`` (an instance of complex ``cls``) as XML text, elements
        prefixed ``tns:`` for namespace ``tns`` (None values and empty lists omitted).
        Raises ValueError for text XML cannot carry, UnsupportedType for a field of
        another namespace."""
        out: list[str] = []
        self._write(cls, inst, tns, out)
        return "".join(out)

    def _write(self, cls: Any, inst: Any, tns: str, out: list[str]) -> None:
        for f in self.fields(cls):
            value = getattr(inst, f.name, None)
            if value is None:
                continue
            start, end, empty = self._tags(f, tns)
            items: Sequence[Any] = value if f.repeated else (value,)
            if f.kind == COMPLEX:
                for item in items:
                    if item is None:
                        continue
                    at = len(out)
                    out.append(start)
                    self._write(f.cls, item, tns, out)
                    if len(out) == at + 1:
                        out[at] = empty
                    else:
                        out.append(end)
                continue
            to_text = _TEXT[f.kind]
            for item in items:
                if item is not None:
                    out.append(start)
                    out.append(escape_text(to_text(item)))
                    out.append(end)

    def _tags(self, f: Field, tns: str) -> tuple[str, str, str]:
        known = self._tag_text.get(f.tag)
        if known is None:
            ns, _, local = f.tag[1:].partition("}")
            if ns != tns:
                raise UnsupportedType(f"field {f.name} is in namespace {ns}, not {tns}")
            known = (f"<{TNS_PREFIX}:{local}>", f"</{TNS_PREFIX}:{local}>",
                     f"<{TNS_PREFIX}:{local}/>")
            self._tag_text[f.tag] = known
        return known

    def envelope(self, out_message: Any, result: Any) -> bytes:
        """The whole response document of an operation whose wrapper class is ``out_message``
        and whose function returned ``result`` (Spyne's conventions: one field - the value
        itself; several - a sequence in field order)."""
        tns = out_message.get_namespace()
        name = out_message.get_type_name()
        fields = self.fields(out_message)
        if len(fields) == 1:
            body = self.fragment(out_message, _One(fields[0].name, result), tns)
        elif fields:
            values = {f.name: v for f, v in zip(fields, result, strict=True)}
            body = self.fragment(out_message, _Many(values), tns)
        else:
            body = ""
        wrapper = (
            f"<{TNS_PREFIX}:{name}>{body}</{TNS_PREFIX}:{name}>"
            if body
            else f"<{TNS_PREFIX}:{name}/>"
        )
        return (
            f"<?xml version='1.0' encoding='UTF-8'?>\n<{ENV_PREFIX}:Envelope "
            f'xmlns:{ENV_PREFIX}="{SOAP_ENV}" xmlns:{TNS_PREFIX}="{escape_attribute(tns)}">'
            f"<{ENV_PREFIX}:Body>{wrapper}</{ENV_PREFIX}:Body></{ENV_PREFIX}:Envelope>"
        ).encode()


class _One:
    """A single return value seen as an object with one attribute."""

    def __init__(self, name: str, value: Any) -> None:
        setattr(self, name, value)


class _Many:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _bytes_text(value: Any) -> str:
    data = value if isinstance(value, bytes | bytearray | memoryview) else b"".join(value)
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _bool_text(value: Any) -> str:
    return "true" if value else "false"


def _datetime_text(value: datetime) -> str:
    return value.isoformat()


_TEXT: dict[str, Callable[[Any], str]] = {
    STR: str,
    INT: lambda v: str(int(v)),
    BOOL: _bool_text,
    DATETIME: _datetime_text,
    BYTES: _bytes_text,
}


# Characters XML 1.0 cannot carry (lxml refuses them when building a tree).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_XML_MESSAGE = (
    "All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters"
)
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTRIBUTE_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;", "\n": "&#10;",
     "\t": "&#9;"}
)


def escape_text(text: str) -> str:
    """``text`` as element content (ValueError for characters XML cannot carry)."""
    if _NOT_XML.search(text):
        raise ValueError(_NOT_XML_MESSAGE)
    return text.translate(_TEXT_ESCAPES)


def escape_attribute(text: str) -> str:
    """``text`` as a double-quoted attribute value (ValueError as :func:`escape_text`)."""
    if _NOT_XML.search(text):
        raise ValueError(_NOT_XML_MESSAGE)
    return text.translate(_ATTRIBUTE_ESCAPES)


def fault_envelope(code: str, message: str) -> bytes:
    """A SOAP 1.1 fault document as Spyne writes it (code in the envelope's namespace)."""
    root = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={ENV_PREFIX: SOAP_ENV})
    body = etree.SubElement(root, f"{{{SOAP_ENV}}}Body")
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"{ENV_PREFIX}:{code}"
    etree.SubElement(fault, "faultstring").text = message
    etree.SubElement(fault, "faultactor").text = ""
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
