"""XmlGuard behind a real gunicorn (HTTP/1.1, chunked bodies), driven with requests.

gunicorn imports this module and serves ``app``: the guard in front of an
application that reports what reached it as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import requests
from lxml import etree

from soapattest.security.wssecurity import build_security_header
from soapattest.security.xmlguard import ENV_OPERATION, ENV_WSSE, SOAP11_ENV, XmlGuard
from tests.conftest import ROOT

NS = "urn:soapattest:v1"
LIMIT = 8192


def _inner(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ["REQUEST_METHOD"] == "GET":
        data = json.dumps({"method": "GET", "query": environ["QUERY_STRING"]}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [data]
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    report = {
        "operation": environ[ENV_OPERATION],
        "wsse": environ[ENV_WSSE] is not None,
        "length": len(body),
        "scheme": environ["wsgi.url_scheme"],
    }
    data = json.dumps(report).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]


app = XmlGuard(_inner, max_bytes=LIMIT, max_depth=32, service_namespace=NS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    def kill(p: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)  # the master and any worker it forked
        p.wait(5)

    for _ in range(5):
        port = _free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
                 "1", "--timeout", "30", f"{__name__}:app"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        up = False
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    requests.get(f"http://127.0.0.1:{port}/?wsdl", timeout=2)
                    up = True
                    break
                except requests.RequestException:
                    time.sleep(0.1)
        except BaseException:
            kill(proc)
            raise
        if up:
            break
        kill(proc)
    else:
        raise AssertionError(f"gunicorn did not start: {log.read_text()}")
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def envelope(name: str = "h1", header: str = "") -> bytes:
    head = f"<soap:Header>{header}</soap:Header>" if header else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP11_ENV}" '
            f'xmlns:t="{NS}">{head}<soap:Body><t:GetHost><t:name>{name}</t:name></t:GetHost>'
            "</soap:Body></soap:Envelope>").encode()


def post(url: str, data: Any) -> requests.Response:
    return requests.post(url, data=data, timeout=10,
                         headers={"Content-Type": "text/xml; charset=utf-8",
                                  "SOAPAction": '"DeleteHost"'})


def fault_code(resp: requests.Response) -> str:
    assert resp.status_code == 500
    assert resp.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(resp.content)
    return (root.findtext(f".//{{{SOAP11_ENV}}}Fault/faultcode") or "").partition(":")[2]


def test_request_passes_with_operation_from_the_body(url: str) -> None:
    header = etree.tostring(build_security_header("alice", "some password")).decode()
    body = envelope(header=header)
    resp = post(url, body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"operation": "GetHost", "wsse": True, "length": len(body),
                           "scheme": "http"}


def test_chunked_request_passes(url: str) -> None:
    body = envelope()
    resp = post(url, iter([body[:50], body[50:]]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["length"] == len(body)


def test_chunked_request_over_the_cap_refused(url: str) -> None:
    body = envelope("x" * LIMIT)
    assert fault_code(post(url, iter([body[i:i + 1000] for i in range(0, len(body), 1000)]))) \
        == "Client.RequestTooLarge"


def test_content_length_over_the_cap_refused(url: str) -> None:
    assert fault_code(post(url, envelope("x" * LIMIT))) == "Client.RequestTooLarge"
    assert post(url, envelope("x" * (LIMIT - 400))).status_code == 200


def test_entity_expansion_refused(url: str) -> None:
    doc = (f'<!DOCTYPE x [<!ENTITY a "{"A" * 1000}">]><soap:Envelope xmlns:soap="{SOAP11_ENV}" '
           f'xmlns:t="{NS}"><soap:Body><t:GetHost><t:name>{"&a;" * 100}</t:name></t:GetHost>'
           "</soap:Body></soap:Envelope>").encode()
    assert fault_code(post(url, doc)) == "Client.XmlForbidden"


def test_wsdl_get_passes(url: str) -> None:
    resp = requests.get(url + "?wsdl", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"method": "GET", "query": "wsdl"}


def test_malformed_request_refused_then_service_goes_on(url: str) -> None:
    assert fault_code(post(url, b"<garbage")) == "Client.InvalidEnvelope"
    assert post(url, envelope()).status_code == 200
