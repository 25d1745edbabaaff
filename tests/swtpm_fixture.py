"""Start and stop a real swtpm (TPM 2.0 simulator) for tests.

Usage::

    from tests.swtpm_fixture import swtpm_server, tcti_config

    with swtpm_server() as (host, port):
        esapi = ESAPI(TCTILdr("swtpm", tcti_config(host, port)))

or the pytest fixtures ``swtpm`` (one simulator per test) and
``swtpm_module`` (one per test module): import them into a test module or a
conftest (``from tests.swtpm_fixture import swtpm  # noqa: F401``).

Each simulator gets its own state directory and a free pair of loopback TCP
ports (server ``port``, control channel ``port + 1``); when swtpm loses a
race for a port it is restarted on another pair. The process is terminated
(then killed) on exit. Tests that use it are marked ``swtpm`` and skipped
when the binary is missing.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HOST = "127.0.0.1"
_START_TRIES = 8


def have_swtpm() -> bool:
    """True when the swtpm binary is on PATH."""
    return shutil.which("swtpm") is not None


def tcti_config(host: str, port: int) -> str:
    """The TCTI configuration string of the swtpm TCTI (``TCTILdr("swtpm", ...)``)."""
    return f"host={host},port={port}"


def _port_pair(host: str) -> int:
    """A port P such that P and P+1 were both free a moment ago."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of TCP ports")


def _wait_listening(proc: subprocess.Popen[bytes], host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.2)
            try:
                s.connect((host, port))
            except OSError:
                time.sleep(0.02)
                continue
            return True
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def swtpm_server(
    state_dir: Path | None = None, *, host: str = HOST, timeout: float = 10.0
) -> Iterator[tuple[str, int]]:
    """Run a swtpm TPM 2.0 (startup done) for the ``with`` block; yields ``(host, port)``.

    ``state_dir`` holds the TPM's NV state (a fresh temporary directory,
    removed afterwards, when ``None``). The control channel listens on
    ``port + 1``.
    """
    tmp: str | None = None
    if state_dir is None:
        tmp = tempfile.mkdtemp(prefix="swtpm-")
        state_dir = Path(tmp)
    state_dir.mkdir(parents=True, exist_ok=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(_START_TRIES):
            port = _port_pair(host)
            log = state_dir / "swtpm.log"
            proc = subprocess.Popen(
                [
                    "swtpm",
                    "socket",
                    "--tpm2",
                    "--tpmstate",
                    f"dir={state_dir}",
                    "--server",
                    f"type=tcp,port={port},bindaddr={host}",
                    "--ctrl",
                    f"type=tcp,port={port + 1},bindaddr={host}",
                    "--flags",
                    "not-need-init,startup-clear",
                    "--log",
                    f"file={log}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _wait_listening(proc, host, port, timeout):
                break
            _stop(proc)
            proc = None
        if proc is None:
            raise RuntimeError(f"swtpm did not start (see {state_dir / 'swtpm.log'})")
        yield host, port
    finally:
        if proc is not None:
            _stop(proc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def swtpm(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A fresh swtpm for one test: ``(host, port)``."""
    if not have_swtpm():
        pytest.skip("swtpm not installed")
    with swtpm_server(tmp_path / "swtpm-state") as addr:
        yield addr


@pytest.fixture(scope="module")
def swtpm_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """One swtpm shared by the tests of a module: ``(host, port)``."""
    if not have_swtpm():
        pytest.skip("swtpm not installed")
    with swtpm_server(tmp_path_factory.mktemp("swtpm-state")) as addr:
        yield addr
