"""Child processes of the simulator: own process group, bounded stop, no orphans.

Every swtpm and agent runs in its own session (``start_new_session``), so
stopping it signals the whole group. :func:`stop_group` sends SIGTERM, waits,
then SIGKILL. :func:`reap_stale` kills processes a previous run left behind
(parent killed with SIGKILL), recognised by a marker in their command line.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from soapattest.errors import SimulationError

log = logging.getLogger("soapattest.sim")


def spawn(argv: Sequence[str], log_path: Path, *, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout+stderr appended to ``log_path``."""
    with log_path.open("ab") as out:
        return subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=cwd, close_fds=True,
        )


def stop_group(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0,
               sig: int = signal.SIGTERM) -> None:
    """Signal ``proc``'s process group (``sig``, then SIGKILL after ``timeout``) and reap it."""
    if proc is None or proc.poll() is not None:
        if proc is not None:
            _kill_group(proc.pid, signal.SIGKILL)  # stray children of an exited leader
        return
    _kill_group(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("pid %d did not stop within %.0fs; killing it", proc.pid, timeout)
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait(5)
    _kill_group(proc.pid, signal.SIGKILL)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_for(predicate: object, timeout: float, what: str,
             proc: subprocess.Popen[bytes] | None = None, log_path: Path | None = None) -> None:
    """Poll ``predicate()`` until true; raise :class:`SimulationError` on timeout or exit."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise SimulationError(f"{what}: process exited with status {proc.returncode}"
                                  f"{tail(log_path)}")
        if time.monotonic() > deadline:
            raise SimulationError(f"{what}: not ready after {timeout:.0f}s{tail(log_path)}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def tail(path: Path | None, lines: int = 8) -> str:
    """The last ``lines`` lines of a log file, formatted for an error message."""
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").strip().splitlines()[-lines:]
    return ("; log " + str(path) + ":\n  " + "\n  ".join(text)) if text else ""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when a TCP connection to ``host:port`` succeeds (it is closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port_pair(attempts: int = 50) -> tuple[int, int]:
    """Two consecutive free loopback ports ``(p, p + 1)`` (swtpm: server, ctrl).

    There is a window between this check and the swtpm binding the ports;
    callers retry with a new pair when the swtpm fails to bind.
    """
    for _ in range(attempts):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        continue
                    raise
                return port, port + 1
    raise SimulationError("no pair of consecutive free ports found")


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def reap_stale(pids: Iterable[int], marker: str) -> int:
    """Kill the process groups of ``pids`` whose command line contains ``marker``.

    Returns how many were killed. A pid reused by an unrelated process does
    not carry the marker and is left alone.
    """
    killed = 0
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker.encode() in cmdline:
            _kill_group(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed
