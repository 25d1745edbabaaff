"""Slow or stalled clients cannot hold the server's threads (real gunicorn over HTTP)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import ROOT

HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 5000\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("slow")
    port = _free_port()
    conf = base / "s.conf"
    conf.write_text(
        f"[server]\nlisten = 127.0.0.1:{port}\nworkers = 1\nthreads = 1\n"
        f"request_timeout = 1\nstate_dir = {base / 'state'}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "soapattest", "serve", "--config", str(conf)],
        cwd=ROOT, stdout=(base / "log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url + "?wsdl", timeout=2)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((base / "log").read_text()) from None
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _stalled(url: str) -> socket.socket:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(HEAD + b"<soapenv:Envelope")  # then nothing: the body never completes
    return s


def _read_response(s: socket.socket) -> bytes:
    """One whole HTTP response (headers and Content-Length bytes; TCP may split them)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_a_stalled_body_is_cut_off_with_a_fault(server: str) -> None:
    s = _stalled(server)
    try:
        answer = _read_response(s)
    finally:
        s.close()
    assert b"Client.RequestTimeout" in answer
    # positive twin: a complete request gets its (authentication) answer at once
    r = requests.post(server, data=b"<x/>", timeout=10)
    assert b"Client.InvalidEnvelope" in r.content


def test_stalled_clients_do_not_starve_others(server: str) -> None:
    # One thread, four stalled bodies. Without the body deadline the thread would be held
    # until the stalled clients go away (after this request): it would time out.
    stalled = [_stalled(server) for _ in range(4)]
    try:
        r = requests.get(server + "?wsdl", timeout=30)
    finally:
        for s in stalled:
            s.close()
    assert r.status_code == 200
