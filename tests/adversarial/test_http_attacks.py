"""Hostile requests over HTTP to the real server (gunicorn + XML guard + WS-Security + Spyne).

Every request carries a valid admin UsernameToken (unless the case is about
authentication) and a *write* - DeleteHost of the golden host - so that a
request that slipped through would be visible: the host would be gone. The
XML guard's rules are unit-tested in ``tests/unit/test_security_xmlguard.py``
and behind a bare gunicorn in ``tests/integration/test_security_xmlguard_http.py``;
these send the same classes of documents to the product as deployed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from soapattest.model import TrustStatus
from tests.adversarial.realworld import GOLDEN, RealWorld
from tests.adversarial.support import assert_defended
from tests.swtpm_fixture import have_swtpm

pytestmark = [
    pytest.mark.swtpm,
    pytest.mark.skipif(not have_swtpm(), reason="swtpm is not installed"),
]

DELETE = f"<t:DeleteHost><t:name>{GOLDEN}</t:name></t:DeleteHost>"
GET = f"<t:GetHost><t:name>{GOLDEN}</t:name></t:GetHost>"
MB = 1024 * 1024


def _with_dtd(real: RealWorld, dtd: str, name: str) -> bytes:
    """An admin DeleteHost whose host name is an entity reference, behind ``dtd``."""
    doc = real.envelope(f"<t:DeleteHost><t:name>{name}</t:name></t:DeleteHost>",
                        user=real.admin_user)
    return f'<?xml version="1.0"?>\n<!DOCTYPE soap:Envelope [{dtd}]>\n'.encode() + doc


def xxe_file(real: RealWorld) -> bytes:
    return _with_dtd(real, '<!ENTITY x SYSTEM "file:///etc/passwd">', "&x;")


def xxe_parameter(real: RealWorld) -> bytes:
    return _with_dtd(real, '<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;', GOLDEN)


def billion_laughs(real: RealWorld) -> bytes:
    ents = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    return _with_dtd(real, ents, "&l9;")


def quadratic_blowup(real: RealWorld) -> bytes:
    return _with_dtd(real, f'<!ENTITY a "{"A" * 50_000}">', "&a;" * 20_000)


def oversize(real: RealWorld) -> bytes:
    pad = "<!--" + "x" * (5 * MB) + "-->"
    return real.envelope(pad + DELETE, user=real.admin_user)


def oversize_chunked(real: RealWorld) -> Iterator[bytes]:
    doc = oversize(real)
    return iter([doc[i : i + 65536] for i in range(0, len(doc), 65536)])


def deep_nesting(real: RealWorld) -> bytes:
    deep = "<t:x>" * 100 + "</t:x>" * 100
    return real.envelope(
        f"<t:DeleteHost><t:name>{GOLDEN}</t:name>{deep}</t:DeleteHost>", user=real.admin_user
    )


def very_deep_nesting(real: RealWorld) -> bytes:
    deep = "<t:x>" * 20_000 + "</t:x>" * 20_000
    return real.envelope(
        f"<t:DeleteHost><t:name>{GOLDEN}</t:name>{deep}</t:DeleteHost>", user=real.admin_user
    )


def two_body_children(real: RealWorld) -> bytes:
    return real.envelope(GET + DELETE, user=real.reader)


def second_body(real: RealWorld) -> bytes:
    doc = real.envelope(GET, user=real.reader)
    return doc.replace(
        b"</soap:Body>", f"</soap:Body><soap:Body>{DELETE}</soap:Body>".encode()
    )


def body_in_body(real: RealWorld) -> bytes:
    return real.envelope(f"<soap:Body>{DELETE}</soap:Body>", user=real.admin_user)


def header_after_body(real: RealWorld) -> bytes:
    doc = real.envelope(GET, user=real.reader)
    tail = f"<soap:Header>{DELETE}</soap:Header></soap:Envelope>"
    return doc.replace(b"</soap:Envelope>", tail.encode())


def utf16(real: RealWorld) -> bytes:
    doc = real.envelope(DELETE, user=real.admin_user).decode()
    return ('<?xml version="1.0" encoding="UTF-16"?>' + doc).encode("utf-16")


def processing_instruction(real: RealWorld) -> bytes:
    return real.envelope(f"<?evil run?>{DELETE}", user=real.admin_user)


def foreign_namespace(real: RealWorld) -> bytes:
    return real.envelope(
        f'<x:DeleteHost xmlns:x="urn:evil"><x:name>{GOLDEN}</x:name></x:DeleteHost>',
        user=real.reader,
    )


def unknown_must_understand(real: RealWorld) -> bytes:
    header = f'<e:Routing xmlns:e="urn:evil" soap:mustUnderstand="1">{GOLDEN}</e:Routing>'
    return real.envelope(DELETE, user=real.admin_user, header=header)


def two_security_headers(real: RealWorld) -> bytes:
    return real.envelope(DELETE, user=real.reader, header=real.security_header(real.admin_user))


def xinclude(real: RealWorld) -> bytes:
    inc = '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd"/>'
    return real.envelope(f"<t:DeleteHost><t:name>{inc}</t:name></t:DeleteHost>",
                         user=real.admin_user)


ATTACKS: list[tuple[str, Callable[[RealWorld], bytes | Iterator[bytes]], str]] = [
    ("xxe-file", xxe_file, "Client.XmlForbidden"),
    ("xxe-parameter-entity", xxe_parameter, "Client.XmlForbidden"),
    ("billion-laughs", billion_laughs, "Client.XmlForbidden"),
    ("quadratic-blowup", quadratic_blowup, "Client.XmlForbidden"),
    ("oversize", oversize, "Client.RequestTooLarge"),
    ("oversize-chunked", oversize_chunked, "Client.RequestTooLarge"),
    ("deep-nesting", deep_nesting, "Client.XmlTooDeep"),
    ("very-deep-nesting", very_deep_nesting, "Client.XmlTooDeep"),
    ("smuggled-second-body-child", two_body_children, "Client.InvalidEnvelope"),
    ("smuggled-second-body", second_body, "Client.InvalidEnvelope"),
    # one Body child (the guard's shape holds), but no operation of ours: the schema refuses
    ("smuggled-body-in-body", body_in_body, "Client.SchemaValidationError"),
    ("smuggled-header-after-body", header_after_body, "Client.InvalidEnvelope"),
    ("utf16-encoding", utf16, "Client.XmlForbidden"),
    ("processing-instruction", processing_instruction, "Client.XmlForbidden"),
    ("foreign-namespace-operation", foreign_namespace, "Client.SchemaValidationError"),
    ("unknown-must-understand-header", unknown_must_understand, "Client.MustUnderstand"),
    ("two-security-headers", two_security_headers, "Client.InvalidEnvelope"),
    ("xinclude", xinclude, "Client.SchemaValidationError"),
]


@pytest.mark.parametrize(("case", "make", "fault"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_hostile_xml_is_refused_and_changes_nothing(
    real: RealWorld, case: str, make: Callable[[RealWorld], bytes | Iterator[bytes]], fault: str
) -> None:
    # positive twin: the same kind of request, well-formed, is served
    ok = real.post(real.envelope(GET, user=real.reader))
    assert ok.status == 200 and ok.fault is None, ok.body[:300]
    before = real.snapshot()
    answer = real.post(make(real))
    assert answer.status == 500 and answer.content_type.startswith("text/xml"), answer
    assert_defended(real, before, answer.outcome(), host=GOLDEN, fault=fault)
    assert b"root:" not in answer.body  # nothing of /etc/passwd anywhere
    assert real.admin.get_host(GOLDEN).name == GOLDEN


def test_soap_action_cannot_change_the_operation_authorized(real: RealWorld) -> None:
    before = real.snapshot()
    answer = real.post(real.envelope(DELETE, user=real.reader), soap_action='"GetHost"')
    assert_defended(real, before, answer.outcome(), host=GOLDEN, fault="Client.NotAuthorized")
    ok = real.post(real.envelope(GET, user=real.reader), soap_action='"DeleteHost"')
    assert ok.status == 200  # positive twin: the Body decides, for reads too


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
def test_write_sent_with_another_http_method_is_not_run(real: RealWorld, method: str) -> None:
    """The XML guard screens everything but GET/HEAD; Spyne serves only POST (and the WSDL
    on GET): a SOAP write in a GET or PUT body is never parsed into an operation."""
    before = real.snapshot()
    answer = real.post(real.envelope(DELETE, user=real.admin_user), method=method)
    assert answer.status in (405, 500), answer
    assert_defended(real, before, answer.outcome(), host=GOLDEN,
                    fault="Client.RequestNotAllowed")
    assert real.admin.get_host(GOLDEN).name == GOLDEN


def test_operation_smuggled_into_a_header_is_not_run(real: RealWorld) -> None:
    """A DeleteHost element in the Header (no mustUnderstand) beside a reader's GetHost:
    the Body's operation is served, the header is ignored, nothing is deleted."""
    before = real.snapshot()
    answer = real.post(real.envelope(GET, user=real.reader, header=DELETE))
    assert answer.status == 200 and answer.fault is None
    assert real.snapshot().state == before.state
    assert real.admin.get_host(GOLDEN).name == GOLDEN


@pytest.mark.parametrize("who", ["anonymous", "reader", "password-text-over-http"])
def test_unauthenticated_and_wrong_role_writes_over_http(real: RealWorld, who: str) -> None:
    if who == "password-text-over-http":  # the admin's password in clear text, no TLS
        from lxml import etree

        from soapattest.security.wssecurity import build_security_header

        user, password = real.admin_user
        sec = etree.tostring(build_security_header(user, password, mode="text")).decode()
        doc = real.envelope(DELETE, user=None, header=sec)
    else:
        doc = real.envelope(DELETE, user=None if who == "anonymous" else real.reader)
    before = real.snapshot()
    answer = real.post(doc)
    assert_defended(real, before, answer.outcome(), host=GOLDEN, fault="Client.NotAuthorized")
    assert real.attest(GOLDEN).status is TrustStatus.TRUSTED  # positive twin: admin's call


def test_replayed_request_is_refused(real: RealWorld) -> None:
    """The exact bytes of an admin's write, captured and sent again."""
    body = (
        f"<t:UpdateHost><t:name>{GOLDEN}</t:name><t:description>golden host</t:description>"
        "</t:UpdateHost>"
    )
    captured = real.envelope(body, user=real.admin_user)
    first = real.post(captured)
    assert first.status == 200, first.body[:300]  # positive twin
    before = real.snapshot()
    again = real.post(captured)
    assert_defended(real, before, again.outcome(), host=GOLDEN, fault="Client.NotAuthorized")
    assert re.search("replay|used", again.message, re.IGNORECASE), again.message

