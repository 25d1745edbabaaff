"""Signed SAML 2.0 trust assertions (OASIS SAML 2.0 Core, section 2.3.3).

An assertion says, about one host at one time: its trust status, the report it
comes from, the policy, and each component's verdict, valid from NotBefore to
NotOnOrAfter, signed (enveloped XML-DSig, RSA-SHA256, exclusive C14N) with the
server's key. :func:`verify_assertion` is what a relying party does: check the
signature with the published certificate, then read only what was signed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree
from signxml import methods
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier

from soapattest.errors import AssertionVerificationError
from soapattest.model import Host, TrustReport, TrustStatus

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ATTR_PREFIX = "urn:soapattest:attribute:"


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """What a verified assertion says."""

    assertion_id: str
    issuer: str
    host: str
    not_before: datetime
    not_on_or_after: datetime
    attributes: dict[str, str]

    @property
    def trusted(self) -> bool:
        """True when the host was TRUSTED."""
        return self.attributes.get("trust_status") == TrustStatus.TRUSTED.value


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _el(
    parent: etree._Element, local: str, text: str | None = None, **attrs: str
) -> etree._Element:
    el = etree.SubElement(parent, f"{{{SAML}}}{local}", attrs)
    if text is not None:
        el.text = text
    return el


def _attr(stmt: etree._Element, name: str, value: str, xs_type: str = "xs:string") -> None:
    attr = _el(
        stmt,
        "Attribute",
        Name=ATTR_PREFIX + name,
        NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
    )
    val = _el(attr, "AttributeValue", value)
    val.set(f"{{{XSI}}}type", xs_type)


def build_assertion(
    host: Host,
    report: TrustReport,
    *,
    issuer: str,
    now: datetime,
    validity: int,
) -> etree._Element:
    """The unsigned assertion element (with a signature placeholder after Issuer)."""
    not_after = now + timedelta(seconds=validity)
    root = etree.Element(
        f"{{{SAML}}}Assertion",
        {"ID": f"_{uuid.uuid4().hex}", "IssueInstant": _ts(now), "Version": "2.0"},
        nsmap={"saml2": SAML, "xs": XS, "xsi": XSI},
    )
    _el(root, "Issuer", issuer)
    etree.SubElement(root, f"{{{DS}}}Signature", {"Id": "placeholder"}, nsmap={"ds": DS})
    subject = _el(root, "Subject")
    _el(
        subject, "NameID", host.name, Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
    )
    conf = _el(
        subject, "SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"
    )
    _el(conf, "SubjectConfirmationData", NotBefore=_ts(now), NotOnOrAfter=_ts(not_after))
    _el(root, "Conditions", NotBefore=_ts(now), NotOnOrAfter=_ts(not_after))
    stmt = _el(root, "AttributeStatement")
    _attr(stmt, "trusted", str(report.status is TrustStatus.TRUSTED).lower(), "xs:boolean")
    _attr(stmt, "trust_status", report.status.value)
    _attr(stmt, "report_id", str(report.report_id), "xs:long")
    _attr(stmt, "report_time", _ts(report.created_at), "xs:dateTime")
    _attr(stmt, "policy", f"{report.policy or '-'}@{report.policy_version or 0}")
    _attr(stmt, "pool", host.pool or "-")
    if host.identity is not None:
        _attr(stmt, "ak_name", host.identity.ak_name.hex())
    for name, status in sorted(report.components().items()):
        _attr(stmt, f"component:{name}", status.value)
    for wl_name, wl_version in report.whitelists:
        _attr(stmt, f"whitelist:{wl_name}", str(wl_version), "xs:int")
    return root


def sign_assertion(assertion: etree._Element, key_pem: bytes, cert_pem: bytes) -> bytes:
    """Sign ``assertion`` (enveloped, RSA-SHA256, exclusive C14N); return the XML bytes."""
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    signed = signer.sign(
        assertion, key=key_pem, cert=cert_pem.decode(), reference_uri=assertion.get("ID")
    )
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


def _parse_ts(value: str | None) -> datetime:
    if not value:
        raise AssertionVerificationError("assertion lacks a validity period")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AssertionVerificationError(f"bad timestamp {value!r:.40}") from None


def verify_assertion(
    xml: bytes, cert_pem: bytes, *, now: datetime | None = None
) -> VerifiedAssertion:
    """Verify the signature with ``cert_pem`` and read the signed assertion.

    Only the signed element is read (never the document it came in). When
    ``now`` is given the validity period is enforced too. Raises
    :class:`AssertionVerificationError`.
    """
    try:
        result = XMLVerifier().verify(
            xml,
            x509_cert=cert_pem.decode(),
            expect_references=1,
            ignore_ambiguous_key_info=True,
        )
    except (InvalidSignature, InvalidInput, etree.XMLSyntaxError, ValueError) as exc:
        raise AssertionVerificationError(f"assertion signature does not verify: {exc}") from None
    if isinstance(result, list):
        raise AssertionVerificationError("expected exactly one signed reference")
    signed = result.signed_xml
    if signed is None or signed.tag != f"{{{SAML}}}Assertion":
        raise AssertionVerificationError("the signature does not cover a SAML Assertion")
    conditions = signed.find(f"{{{SAML}}}Conditions")
    if conditions is None:
        raise AssertionVerificationError("assertion lacks Conditions")
    not_before = _parse_ts(conditions.get("NotBefore"))
    not_after = _parse_ts(conditions.get("NotOnOrAfter"))
    if now is not None and not not_before <= now < not_after:
        raise AssertionVerificationError(
            f"assertion is valid from {_ts(not_before)} to {_ts(not_after)}, not at {_ts(now)}"
        )
    attributes: dict[str, str] = {}
    for attr in signed.iter(f"{{{SAML}}}Attribute"):
        name = attr.get("Name", "")
        if name.startswith(ATTR_PREFIX):
            attributes[name[len(ATTR_PREFIX) :]] = attr.findtext(f"{{{SAML}}}AttributeValue") or ""
    return VerifiedAssertion(
        assertion_id=signed.get("ID", ""),
        issuer=signed.findtext(f"{{{SAML}}}Issuer") or "",
        host=signed.findtext(f"{{{SAML}}}Subject/{{{SAML}}}NameID") or "",
        not_before=not_before,
        not_on_or_after=not_after,
        attributes=attributes,
    )
