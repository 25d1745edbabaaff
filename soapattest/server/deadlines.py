"""A total deadline for each HTTP call to a trust agent.

urllib3 applies its timeout to each socket operation, and the clock
restarts with every byte received: an agent that answers one byte every few
seconds - broken, or hostile - keeps a call, and with it a whole AttestHosts
batch, waiting for hours. :class:`CallDeadlines` bounds the whole exchange
(connect, request, status line, headers, body): a watchdog thread shuts the
socket of a call that overruns down, which makes the blocked read return at once
and the call fail; :meth:`CallDeadlines.guard` says whether that happened.

Use it with urllib3 pools of :data:`POOL_CLASSES` (connections that tell the
watchdog which socket the current call of their thread uses)::

    deadlines = CallDeadlines()
    pools = urllib3.PoolManager()
    pools.pool_classes_by_scheme = POOL_CLASSES
    with deadlines.guard(10.0) as call:
        response = pools.request("POST", url, ...)   # and read it inside the block
    if call.expired: ...
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

TICK = 0.01  # the watchdog wakes up this long after the next deadline

_current = threading.local()  # the guarded call of this thread, if any


class GuardedCall:
    """One call under a deadline; ``expired`` is set when the watchdog cut it off."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def use(self, sock: socket.socket | None) -> None:
        """The call now talks over ``sock`` (cut off at once if it expired already)."""
        with self._lock:
            self._sock = sock
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        """Cut the call off: shut its socket down (both directions)."""
        with self._lock:
            self.expired = True
            _shut(self._sock)


def _shut(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            # The plain socket's shutdown, also for an SSLSocket: it only wakes the reader
            # up and leaves the TLS object to the thread that owns it.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class CallDeadlines:
    """A watchdog (one daemon thread, started on first use, asleep while no guarded
    call is due) over guarded calls.

    Deadlines wait in a heap; a finished call leaves its entry behind, dropped when it
    reaches the top (or when such leftovers outnumber the live calls). The watchdog is
    woken only when a new deadline is earlier than the one it sleeps towards, so a bulk
    attestation's hundreds of calls with equal timeouts do not wake it once each.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._live: set[GuardedCall] = set()
        self._heap: list[tuple[float, int, GuardedCall]] = []
        self._wake: float | None = None  # when the watchdog wakes next (None: not waiting)
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def guard(self, seconds: float) -> Iterator[GuardedCall]:
        """Run the block as one call of at most ``seconds`` (HTTP I/O of this thread
        through :data:`POOL_CLASSES` connections is cut off after that)."""
        call = GuardedCall(time.monotonic() + seconds)
        with self._cond:
            self._live.add(call)
            heapq.heappush(self._heap, (call.deadline, id(call), call))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="agent-deadlines", daemon=True
                )
                self._thread.start()
            if self._wake is None or call.deadline < self._wake:
                self._cond.notify()
        previous = getattr(_current, "call", None)
        _current.call = call
        try:
            yield call
        finally:
            _current.call = previous
            with self._cond:
                self._live.discard(call)
                if len(self._heap) > 4 * len(self._live) + 64:
                    self._heap = [e for e in self._heap if e[2] in self._live]
                    heapq.heapify(self._heap)

    def _watch(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][2] not in self._live or heap[0][0] <= now):
                    _, _, call = heapq.heappop(heap)
                    if call in self._live:
                        call.expire()
                if heap:
                    self._wake = heap[0][0] + TICK
                    self._cond.wait(self._wake - now)
                else:
                    self._wake = None
                    self._cond.wait()


def _register(sock: Any) -> None:
    call = getattr(_current, "call", None)
    if call is not None and sock is not None:
        call.use(sock)


class _Connection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self.sock)  # a kept-alive connection is already connected
        super().request(*args, **kwargs)


class _TlsConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _register(self.sock)
        super().request(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


# urllib3 pool classes whose connections register with the current guarded call.
POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {"http": _Pool, "https": _TlsPool}
