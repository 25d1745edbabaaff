"""The agent's HTTP layer: request guard (size cap, DTD refusal, request log) over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import requests

from soapattest.agent.httpserver import RequestGuard, make_server, serve_in_thread

LIMIT = 1024


def echo_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Echo the body, naming an operation the way the Spyne hook does."""
    environ["soapattest.operation"] = "Echo"
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body or b"get"]


@pytest.fixture
def url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, RequestGuard(echo_app, LIMIT))
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_request_within_limit_passes(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="soapattest.agent.http"):
        r = requests.post(url, data=b"x" * LIMIT, timeout=10)
    assert (r.status_code, r.content) == (200, b"x" * LIMIT)
    assert "op=Echo peer=127.0.0.1 outcome=ok http=200" in caplog.text


def test_request_over_limit_refused(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="soapattest.agent.http"):
        r = requests.post(url, data=b"x" * (LIMIT + 1), timeout=10)
    assert r.status_code == 413
    assert b"Client.RequestTooLarge" in r.content
    assert "outcome=Client.RequestTooLarge http=413" in caplog.text


def test_chunked_request_without_length_refused(url: str) -> None:
    r = requests.post(url, data=iter([b"abc"]), timeout=10)  # chunked transfer encoding
    assert r.status_code == 411
    assert b"Client.InvalidArgument" in r.content


@pytest.mark.parametrize("decl", [b"<!DOCTYPE x>", b'<!ENTITY e "x">'])
def test_dtd_refused(url: str, decl: bytes) -> None:
    r = requests.post(url, data=decl + b"<x/>", timeout=10)
    assert r.status_code == 400
    assert b"Client.InvalidArgument" in r.content


def test_get_passes_through(url: str) -> None:
    r = requests.get(url + "?wsdl", timeout=10)
    assert (r.status_code, r.content) == (200, b"get")


def test_concurrent_requests(url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: requests.post(url, data=str(i), timeout=10).text,
                                range(32)))
    assert results == [str(i) for i in range(32)]
