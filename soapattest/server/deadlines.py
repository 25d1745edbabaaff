"""A total deadline for each HTTP call to a trust agent.

requests (urllib3) applies its timeout to each socket operation, and the clock
restarts with every byte received: an agent that answers one byte every few
seconds - broken, or hostile - keeps a call, and with it a whole AttestHosts
batch, waiting for hours. :class:`CallDeadlines` bounds the whole exchange
(connect, request, status line, headers, body): a watchdog thread shuts the
socket of a call that overruns down, which makes the blocked read return at once
and the call fail; :meth:`CallDeadlines.guard` says whether that happened.

Use it with :class:`DeadlineAdapter` (an ``HTTPAdapter`` whose connections tell
the watchdog which socket the current call of their thread uses)::

    deadlines = CallDeadlines()
    session.mount("http://", DeadlineAdapter(max_retries=0))
    with deadlines.guard(10.0) as call:
        response = session.post(url, ...)   # and read it inside the block
    if call.expired: ...
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
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
    call is due) over guarded calls."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._calls: set[GuardedCall] = set()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def guard(self, seconds: float) -> Iterator[GuardedCall]:
        """Run the block as one call of at most ``seconds`` (HTTP I/O of this thread
        through a :class:`DeadlineAdapter` is cut off after that)."""
        call = GuardedCall(time.monotonic() + seconds)
        with self._cond:
            self._calls.add(call)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name="agent-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        previous = getattr(_current, "call", None)
        _current.call = call
        try:
            yield call
        finally:
            _current.call = previous
            with self._cond:
                self._calls.discard(call)

    def _watch(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                due = [c.deadline for c in self._calls if not c.expired]
                for call in [c for c in self._calls if not c.expired and c.deadline <= now]:
                    call.expire()
                later = [d for d in due if d > now]
                self._cond.wait(min(later) - now + TICK if later else None)


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


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections register their socket with the current
    :meth:`CallDeadlines.guard` of their thread."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}
