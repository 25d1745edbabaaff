"""XmlGuard with hand-made hostile documents; each refusal has a twin that passes through.

The guard is called as a WSGI application (environ in, status and body out)
in front of a dummy application that records what reached it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from typing import Any

import pytest
from lxml import etree

from soapattest.security.wssecurity import SECURITY_TAG, WSSE_NS, build_security_header
from soapattest.security.xmlguard import (
    ENV_ENVELOPE,
    ENV_OPERATION,
    ENV_WSSE,
    SOAP11_ENV,
    XmlGuard,
)

NS = "urn:soapattest:v1"
LIMIT = 64 * 1024
DEPTH = 32


class Recorder:
    """The application behind the guard: records the environ and the body it got."""

    def __init__(self) -> None:
        self.environ: dict[str, Any] | None = None
        self.body: bytes | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.environ = environ
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body = environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"passed"]


class Result:
    def __init__(self, status: str, body: bytes, app: Recorder) -> None:
        self.status = status
        self.body = body
        self.app = app

    @property
    def passed(self) -> bool:
        return self.status.startswith("200") and self.app.environ is not None

    @property
    def fault_code(self) -> str:
        root = etree.fromstring(self.body)
        code = root.findtext(f"{{{SOAP11_ENV}}}Body/{{{SOAP11_ENV}}}Fault/faultcode") or ""
        return code.partition(":")[2]


def call(
    body: bytes,
    *,
    method: str = "POST",
    content_type: str = "text/xml; charset=utf-8",
    length: str | None = "auto",
    chunked: bool = False,
    query: str = "",
    max_bytes: int = LIMIT,
) -> Result:
    app = Recorder()
    guard = XmlGuard(app, max_bytes=max_bytes, max_depth=DEPTH, service_namespace=NS)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": content_type,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
    }
    if length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        environ["CONTENT_LENGTH"] = length
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input_terminated"] = True
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> None:
        seen.append(status)
        if not status.startswith("200"):
            assert ("Content-Type", "text/xml; charset=utf-8") in headers

    out = b"".join(guard(environ, start_response))
    return Result(seen[0], out, app)


def envelope(payload: str = "<t:GetHost><t:name>h1</t:name></t:GetHost>", *, header: str = "",
             decl: str = '<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    head = f"<soap:Header>{header}</soap:Header>" if header else ""
    return (f'{decl}<soap:Envelope xmlns:soap="{SOAP11_ENV}" xmlns:t="{NS}">{head}'
            f"<soap:Body>{payload}</soap:Body></soap:Envelope>").encode()


def refused(result: Result, code: str) -> None:
    assert result.status.startswith("500"), result.status
    assert result.fault_code == code
    assert result.app.environ is None  # the application never saw the request


# ------------------------------------------------------------------ the positive path


def test_plain_request_passes_with_operation_and_original_bytes() -> None:
    body = envelope()
    r = call(body)
    assert r.passed
    assert r.app.body == body
    assert r.app.environ is not None
    assert r.app.environ[ENV_OPERATION] == "GetHost"
    assert r.app.environ[ENV_WSSE] is None
    assert r.app.environ[ENV_ENVELOPE].tag == f"{{{SOAP11_ENV}}}Envelope"


def test_security_header_exposed() -> None:
    header = etree.tostring(build_security_header("alice", "pw-pw-pw-pw-pw")).decode()
    r = call(envelope(header=header))
    assert r.passed and r.app.environ is not None
    assert r.app.environ[ENV_WSSE].tag == SECURITY_TAG


def test_operation_in_foreign_namespace_is_not_a_bare_name() -> None:
    r = call(envelope('<e:GetHost xmlns:e="urn:evil"/>'))
    assert r.passed and r.app.environ is not None
    assert r.app.environ[ENV_OPERATION] == "{urn:evil}GetHost"


def test_soapaction_is_ignored_for_the_operation() -> None:
    app = Recorder()
    guard = XmlGuard(app, max_bytes=LIMIT, service_namespace=NS)
    body = envelope("<t:DeleteHost><t:name>h1</t:name></t:DeleteHost>")
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "text/xml", "HTTP_SOAPACTION": '"GetHost"',
               "wsgi.input": io.BytesIO(body)}
    list(guard(environ, lambda *a: None))
    assert app.environ is not None and app.environ[ENV_OPERATION] == "DeleteHost"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_wsdl_passes_through(method: str) -> None:
    r = call(b"", method=method, query="wsdl", length=None)
    assert r.passed


# ------------------------------------------------------------------ size


def test_content_length_over_limit_refused_before_reading() -> None:
    r = call(envelope(), length=str(LIMIT + 1))
    refused(r, "Client.RequestTooLarge")


def test_body_at_the_limit_passes() -> None:
    base = envelope("<t:GetHost><t:name>{}</t:name></t:GetHost>")
    body = base.replace(b"{}", b"a" * (LIMIT - len(base) + 2))
    assert len(body) == LIMIT
    assert call(body).passed
    refused(call(body + b" "), "Client.RequestTooLarge")


def test_chunked_body_capped_while_reading() -> None:
    big = envelope("<t:GetHost><t:name>" + "a" * LIMIT + "</t:name></t:GetHost>")
    refused(call(big, length=None, chunked=True), "Client.RequestTooLarge")
    r = call(envelope(), length=None, chunked=True)
    assert r.passed and r.app.environ is not None
    assert r.app.environ["CONTENT_LENGTH"] == str(len(envelope()))
    assert "HTTP_TRANSFER_ENCODING" not in r.app.environ


def test_no_length_and_not_chunked_refused() -> None:
    refused(call(envelope(), length=None), "Client.InvalidEnvelope")


@pytest.mark.parametrize("length", ["-1", "12a", "1e3"])
def test_bad_content_length_refused(length: str) -> None:
    refused(call(envelope(), length=length), "Client.InvalidEnvelope")


def test_truncated_body_refused() -> None:
    body = envelope()
    refused(call(body, length=str(len(body) + 10)), "Client.InvalidEnvelope")


def test_long_text_and_attribute_within_the_cap_pass() -> None:
    text = "x" * 40_000
    assert call(envelope(f'<t:GetHost a="{text}"><t:name>{text[:10_000]}</t:name></t:GetHost>'),
                ).passed


# ------------------------------------------------------------------ DTDs and entities

XXE_FILE = """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="urn:soapattest:v1">
<soap:Body><t:GetHost><t:name>&xxe;</t:name></t:GetHost></soap:Body></soap:Envelope>"""

XXE_HTTP = XXE_FILE.replace("file:///etc/passwd", "http://127.0.0.1:9/evil.dtd")
XXE_PARAMETER = """<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x/></soap:Body>
</soap:Envelope>"""
EXTERNAL_DTD = """<!DOCTYPE soap:Envelope SYSTEM "http://127.0.0.1:9/soap.dtd">
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x/></soap:Body>
</soap:Envelope>"""


def billion_laughs() -> str:
    ents = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    ]
    return (f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(ents)}]>'
            f'<soap:Envelope xmlns:soap="{SOAP11_ENV}" xmlns:t="{NS}"><soap:Body><t:GetHost>'
            "<t:name>&lol9;</t:name></t:GetHost></soap:Body></soap:Envelope>")


def quadratic_blowup() -> str:
    entity = "A" * 20_000
    refs = "&a;" * 2_000
    return (f'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "{entity}">]>'
            f'<soap:Envelope xmlns:soap="{SOAP11_ENV}" xmlns:t="{NS}"><soap:Body><t:GetHost>'
            f"<t:name>{refs}</t:name></t:GetHost></soap:Body></soap:Envelope>")


@pytest.mark.parametrize(
    "doc",
    [XXE_FILE, XXE_HTTP, XXE_PARAMETER, EXTERNAL_DTD, billion_laughs(), quadratic_blowup(),
     "<!-- leading comment --><!DOCTYPE x>" + envelope().decode()[38:]],
    ids=["xxe-file", "xxe-http", "xxe-parameter", "external-dtd", "billion-laughs",
         "quadratic-blowup", "doctype-after-comment"],
)
def test_dtd_documents_refused(doc: str) -> None:
    started = time.monotonic()
    r = call(doc.encode())
    refused(r, "Client.XmlForbidden")
    assert b"root:" not in r.body  # nothing of /etc/passwd anywhere
    assert time.monotonic() - started < 30  # sanity bound, not a benchmark


def test_undeclared_entity_reference_refused() -> None:
    refused(call(envelope("<t:GetHost><t:name>&xxe;</t:name></t:GetHost>")),
            "Client.XmlForbidden")


def test_predefined_and_character_references_pass() -> None:
    r = call(envelope("<t:GetHost><t:name>a&amp;b&lt;&#65;&#x42;</t:name></t:GetHost>"))
    assert r.passed


def test_doctype_text_inside_cdata_passes() -> None:
    r = call(envelope("<t:GetHost><t:name><![CDATA[<!DOCTYPE x [<!ENTITY e 'x'>]>]]>"
                      "</t:name></t:GetHost>"))
    assert r.passed


# ------------------------------------------------------------------ PIs, comments, encodings


@pytest.mark.parametrize(
    "doc",
    [
        b'<?xml version="1.0"?><?xml-stylesheet href="http://127.0.0.1:9/x.xsl"?>' + envelope(
            decl=""),
        envelope("<t:GetHost><?php system('id'); ?><t:name>h</t:name></t:GetHost>"),
        envelope() + b"<?trailer x?>",
    ],
    ids=["prolog", "body", "epilog"],
)
def test_processing_instructions_refused(doc: bytes) -> None:
    refused(call(doc), "Client.XmlForbidden")


def test_comments_allowed_and_ignored() -> None:
    r = call(b"<!-- hello -->" + envelope(
        "<!-- before --><t:GetHost><!-- in --><t:name>h</t:name></t:GetHost><!-- after -->",
        decl="",
    ))
    assert r.passed and r.app.environ is not None
    assert r.app.environ[ENV_OPERATION] == "GetHost"


def test_comment_does_not_hide_a_second_body_child() -> None:
    refused(call(envelope("<t:GetHost/><!-- x --><t:DeleteHost/>")), "Client.InvalidEnvelope")


@pytest.mark.parametrize(
    ("doc", "content_type"),
    [
        (envelope(decl='<?xml version="1.0" encoding="ISO-8859-1"?>'), "text/xml"),
        (envelope(decl='<?xml version="1.0" encoding="UTF-16"?>').decode().encode("utf-16"),
         "text/xml"),
        (envelope(decl="").decode().encode("utf-16-le"), "text/xml"),
        (envelope(decl='<?xml version="1.0" encoding="EBCDIC-US"?>'), "text/xml"),
        (envelope(), "text/xml; charset=iso-8859-1"),
        (envelope(), 'text/xml; charset="utf-16"'),
    ],
    ids=["latin1-decl", "utf16-bom", "utf16le-no-bom", "ebcdic-decl", "latin1-charset",
         "utf16-charset"],
)
def test_non_utf8_refused(doc: bytes, content_type: str) -> None:
    r = call(doc, content_type=content_type)
    assert r.status.startswith("500") and r.app.environ is None
    assert r.fault_code in ("Client.XmlForbidden", "Client.InvalidEnvelope")
    if b"encoding=" in doc or "charset" in content_type or doc.startswith(b"\xff\xfe"):
        assert r.fault_code == "Client.XmlForbidden"


@pytest.mark.parametrize(
    ("doc", "content_type"),
    [
        (envelope(decl='<?xml version="1.0" encoding="utf-8"?>'), "text/xml; charset=UTF-8"),
        (b"\xef\xbb\xbf" + envelope(), "text/xml"),
        (envelope(decl=""), "text/xml"),
        (envelope("<t:GetHost><t:name>h\u00e9\u20ac\U0001f511</t:name></t:GetHost>"),
         'text/xml; charset="utf-8"'),
    ],
    ids=["lowercase-decl", "utf8-bom", "no-decl", "non-ascii"],
)
def test_utf8_passes(doc: bytes, content_type: str) -> None:
    assert call(doc, content_type=content_type).passed


def test_invalid_utf8_refused() -> None:
    body = envelope("<t:GetHost><t:name>h</t:name></t:GetHost>")
    refused(call(body.replace(b"<t:name>h", b"<t:name>\xff")), "Client.InvalidEnvelope")
    assert call(body).passed


# ------------------------------------------------------------------ depth


def nested(levels: int) -> str:
    return "<t:GetHost>" + "<t:x>" * levels + "</t:x>" * levels + "</t:GetHost>"


def test_deep_nesting_refused() -> None:
    # Envelope, Body and GetHost are 3 levels
    refused(call(envelope(nested(DEPTH - 2))), "Client.XmlTooDeep")
    assert call(envelope(nested(DEPTH - 3))).passed


def test_very_deep_nesting_refused_by_libxml2_as_too_deep() -> None:
    refused(call(envelope(nested(300))), "Client.XmlTooDeep")


# ------------------------------------------------------------------ envelope structure


@pytest.mark.parametrize(
    "doc",
    [
        b"<notsoap/>",
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><x/></e:Body>'
        b"</e:Envelope>",
        b"not xml at all",
        b"<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body>",
        envelope("<t:GetHost/><t:DeleteHost/>"),
        envelope(""),
        envelope("text only"),
        envelope("<t:GetHost/>trailing text"),
        envelope().replace(b"</soap:Body>", b"</soap:Body><soap:Body><t:DeleteHost/></soap:Body>"),
        envelope().replace(b"<soap:Body>", b"<soap:Body><soap:Body><t:DeleteHost/></soap:Body>"
                           ).replace(b"</soap:Envelope>", b"</soap:Body></soap:Envelope>"),
        envelope(header="<x/>").replace(b"<soap:Header><x/></soap:Header>", b"")
        .replace(b"</soap:Body>", b"</soap:Body><soap:Header/>"),
        envelope().replace(b"<soap:Body>", b"<t:Extra/><soap:Body>"),
        envelope().replace(b"</soap:Body>", b"</soap:Body><t:Trailer/>"),
        envelope(header="<x/>").replace(b"</soap:Header>", b"</soap:Header><soap:Header/>"),
    ],
    ids=["not-soap", "soap12", "not-xml", "unclosed", "two-body-children", "empty-body",
         "text-body", "text-beside-child", "second-body", "body-in-body", "header-after-body",
         "element-before-body", "element-after-body", "two-headers"],
)
def test_invalid_envelopes_refused(doc: bytes) -> None:
    refused(call(doc), "Client.InvalidEnvelope")


def test_body_in_body_twin_with_one_body_passes() -> None:
    assert call(envelope("<t:GetHost/>", header="<x/>")).passed


# ------------------------------------------------------------------ headers


MU = f'xmlns:soap="{SOAP11_ENV}"'


@pytest.mark.parametrize("value", ["1", "true", " 1 "])
def test_unknown_must_understand_header_refused(value: str) -> None:
    r = call(envelope(header=f'<u:Tx xmlns:u="urn:tx" soap:mustUnderstand="{value}"/>'))
    refused(r, "Client.MustUnderstand")
    assert b"urn:tx" in r.body


@pytest.mark.parametrize(
    "header",
    [
        '<u:Tx xmlns:u="urn:tx"/>',
        '<u:Tx xmlns:u="urn:tx" soap:mustUnderstand="0"/>',
        '<u:Tx xmlns:u="urn:tx" soap:mustUnderstand="1" soap:actor="urn:someone-else"/>',
        f'<wsse:Security xmlns:wsse="{WSSE_NS}" soap:mustUnderstand="1"/>',
    ],
    ids=["no-flag", "flag-0", "other-actor", "wsse-security"],
)
def test_understood_or_optional_headers_pass(header: str) -> None:
    assert call(envelope(header=header)).passed


def test_invalid_must_understand_value_refused() -> None:
    r = call(envelope(header='<u:Tx xmlns:u="urn:tx" soap:mustUnderstand="yes"/>'))
    refused(r, "Client.InvalidEnvelope")


def test_two_security_headers_refused() -> None:
    sec = f'<wsse:Security xmlns:wsse="{WSSE_NS}"/>'
    refused(call(envelope(header=sec + sec)), "Client.InvalidEnvelope")
    other = f'<wsse:Security xmlns:wsse="{WSSE_NS}" soap:actor="urn:proxy"/>'
    r = call(envelope(header=sec + other))
    assert r.passed and r.app.environ is not None
    assert r.app.environ[ENV_WSSE].get(f"{{{SOAP11_ENV}}}actor") is None


def test_constructor_bounds() -> None:
    with pytest.raises(ValueError):
        XmlGuard(Recorder(), max_bytes=100)
    with pytest.raises(ValueError):
        XmlGuard(Recorder(), max_bytes=LIMIT, max_depth=300)
