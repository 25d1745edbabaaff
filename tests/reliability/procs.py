"""Process and socket inspection for fault injection (Linux ``/proc`` only).

- :func:`children`: the child pids of a process (gunicorn's workers are the children
  of the arbiter, which is the ``soapattest serve`` process itself);
- :func:`request_waiting`: True once a request sits unread in a socket of the process
  listening on a port (a frozen agent: the server's call is in flight);
- :func:`pids_connected_to`: which of some processes hold a connection to a port (the
  gunicorn worker serving a call is the one talking to the agent);
- :func:`frozen`: SIGSTOP a process for the block (SIGCONT after, unless it died).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
ESTABLISHED = 0x01


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (sorted)."""
    out: list[int] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return sorted(out)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


@dataclass(frozen=True, slots=True)
class TcpSocket:
    """One row of /proc/net/tcp{,6}."""

    local_port: int
    remote_port: int
    state: int
    rx_queue: int
    inode: int


def tcp_sockets() -> list[TcpSocket]:
    """Every TCP socket of the machine (IPv4 and IPv6)."""
    out: list[TcpSocket] = []
    for name in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, remote, state, queues, inode = f[1], f[2], f[3], f[4], f[9]
            out.append(
                TcpSocket(
                    local_port=int(local.rsplit(":", 1)[1], 16),
                    remote_port=int(remote.rsplit(":", 1)[1], 16),
                    state=int(state, 16),
                    rx_queue=int(queues.split(":")[1], 16),
                    inode=int(inode),
                )
            )
    return out


def request_waiting(port: int) -> bool:
    """True when an established connection to local ``port`` holds unread bytes (the
    process listening there is frozen and a client has sent it a request)."""
    return any(
        s.local_port == port and s.state == ESTABLISHED and s.rx_queue > 0 for s in tcp_sockets()
    )


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    fd_dir = PROC / str(pid) / "fd"
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def pids_connected_to(port: int, pids: Iterable[int]) -> list[int]:
    """Those of ``pids`` holding an established connection to remote ``port``."""
    wanted = {s.inode for s in tcp_sockets() if s.remote_port == port and s.state == ESTABLISHED}
    return [pid for pid in pids if _socket_inodes(pid) & wanted]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the block; SIGCONT afterwards (if it still exists)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
