"""SOAP faults and transport failures -> the project's exception types (client side)."""

from __future__ import annotations

import pytest
import requests
from zeep import exceptions as zx

from soapattest.client.faults import fault_code, make_error, translate
from soapattest.client.results import HostTrust
from soapattest.errors import (
    InvalidArgumentError,
    NotAuthorizedError,
    ReportNotFoundError,
    ServerResponseError,
    ServerUnreachableError,
    SoapAttestError,
    UnknownHostError,
    VersionConflictError,
)

URL = "http://127.0.0.1:9/"


def test_fault_code_strips_the_namespace_prefix() -> None:
    assert fault_code("soap11env:Client.UnknownHost") == "Client.UnknownHost"
    assert fault_code("Client.UnknownHost") == "Client.UnknownHost"
    assert fault_code("") == "Server.Internal"


def test_known_code_becomes_its_class_with_the_servers_sentence() -> None:
    exc = make_error("Client.UnknownHost", "no host named 'x'")
    assert type(exc) is UnknownHostError
    assert exc.code == "Client.UnknownHost"
    assert exc.message == str(exc) == "no host named 'x'"
    assert exc.name == ""  # data the wire does not carry: the constructor's default


def test_required_constructor_data_defaults_to_none() -> None:
    exc = make_error("Client.VersionConflict", "whitelist 'a' changed")
    assert type(exc) is VersionConflictError
    assert (exc.name, exc.expected, exc.actual) == (None, None, None)
    report = make_error("Client.ReportNotFound", "no report 7")
    assert type(report) is ReportNotFoundError
    assert report.report_id is None


def test_authentication_faults_map_to_not_authorized() -> None:
    exc = make_error("Client.NotAuthorized", "authentication failed")
    assert type(exc) is NotAuthorizedError


def test_unknown_code_keeps_the_servers_code() -> None:
    exc = make_error("Client.SomethingNew", "new refusal")
    assert type(exc) is SoapAttestError
    assert exc.code == "Client.SomethingNew"
    assert exc.message == "new refusal"


def test_schema_validation_fault_is_an_invalid_argument() -> None:
    exc = make_error(
        "Client.SchemaValidationError",
        ":2:0:ERROR:SCHEMASV:SCHEMAV_CVC_PATTERN_VALID: Element 'name': bad value",
    )
    assert isinstance(exc, InvalidArgumentError)
    assert exc.code == "Client.SchemaValidationError"
    assert exc.message == "Element 'name': bad value"


def test_translate_fault() -> None:
    fault = zx.Fault("no host named 'x'", code="soap11env:Client.UnknownHost")
    exc = translate(fault, "GetHost", URL)
    assert type(exc) is UnknownHostError
    assert exc.message == "no host named 'x'"


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError("[Errno 111] Connection refused"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.SSLError("certificate verify failed"),
    ],
)
def test_transport_failures_are_unreachable(failure: Exception) -> None:
    exc = translate(failure, "GetHost", URL)
    assert type(exc) is ServerUnreachableError
    assert exc.code == "Server.Unreachable"
    assert exc.url == URL
    assert exc.message.startswith("GetHost: ")


def test_connection_refused_names_the_cause() -> None:
    failure = requests.exceptions.ConnectionError(
        "HTTPConnectionPool(...): Max retries exceeded (Caused by NewConnectionError("
        "'...: [Errno 111] Connection refused'))"
    )
    assert translate(failure, "GetHost", URL).message.endswith("Connection refused")


@pytest.mark.parametrize(
    "failure",
    [
        zx.TransportError("bad gateway", status_code=502),
        zx.DTDForbidden("x", None, None),
        zx.EntitiesForbidden("x", "y"),
        zx.XMLSyntaxError("not xml"),
        zx.XMLParseError("unexpected element"),
        ValueError("bad date"),
    ],
)
def test_bad_answers_are_server_response_errors(failure: Exception) -> None:
    exc = translate(failure, "GetHost", URL)
    assert type(exc) is ServerResponseError
    assert exc.code == "Server.BadResponse"


def test_http_status_is_kept() -> None:
    exc = translate(zx.TransportError("bad gateway", status_code=502), "GetHost", URL)
    assert isinstance(exc, ServerResponseError)
    assert exc.status == 502


def test_request_validation_is_invalid_argument() -> None:
    exc = translate(zx.ValidationError("Missing element name", path=["name"]), "GetHost", URL)
    assert type(exc) is InvalidArgumentError
    assert exc.argument == "name"


def test_host_trust_error_is_the_fault_class() -> None:
    failed = HostTrust("x", None, False, fault_code="Client.UnknownHost", fault_string="no host")
    exc = failed.error()
    assert type(exc) is UnknownHostError
    assert not failed.trusted
    ok = HostTrust("y", None, True)
    assert ok.error() is None
