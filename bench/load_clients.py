"""Client side of the load test (``bench/bench_load.py``): raw SOAP over keep-alive HTTP.

Each client thread owns one connection and a :class:`Workload` that picks its next
call from the mix and knows what a right answer looks like; every call carries a
fresh WS-Security PasswordDigest UsernameToken. :func:`run_phase` runs client
processes (forked) x threads, closed loop or open loop at a fixed total rate, and
merges their :class:`Stats`.
"""

from __future__ import annotations

import base64
import http.client
import math
import multiprocessing as mp
import os
import random
import re
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from soapattest.security.wssecurity import build_security_header

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
USER = "load-admin"
READERS = ("GetTrustReport", "ListTrustReports", "PollHosts", "CheckPlacement")
WRITERS = ("AttestHost", "AttestHosts", "AddWhitelistEntries", "RemoveWhitelistEntries")
OPS = READERS + WRITERS
# Relative frequency of each kind of call ("whitelist": Add or Remove, alternating).
MIX = {
    "GetTrustReport": 20,
    "ListTrustReports": 12,
    "PollHosts": 12,
    "CheckPlacement": 14,
    "AttestHost": 20,
    "AttestHosts": 8,
    "whitelist": 14,
}
TRUSTED = b"<tns:status>TRUSTED</tns:status>"
LIST_LIMIT = 10  # reports per ListTrustReports page (the warm-up gives every host as many)
_REPORT_ID = re.compile(rb"<tns:report_id>(\d+)</tns:report_id>")


def report_ids_in(data: bytes) -> list[int]:
    """The report ids in a SOAP answer."""
    return [int(m) for m in _REPORT_ID.findall(data)]


class Caller:
    """One keep-alive HTTP connection sending SOAP calls with a fresh UsernameToken each."""

    def __init__(self, port: int, password: str, timeout: float = 120) -> None:
        self.port, self.password, self.timeout = port, password, timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.conn.connect()
            assert self.conn.sock is not None
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def call(self, op: str, body: str) -> tuple[int, bytes]:
        """(HTTP status, response body); raises OSError/HTTPException on transport errors."""
        token = etree.tostring(build_security_header(USER, self.password, mode="digest"))
        data = (
            f'<e:Envelope xmlns:e="{SOAP_ENV}" xmlns:t="urn:soapattest:v1"><e:Header>'
            f"{token.decode()}</e:Header><e:Body>{body}</e:Body></e:Envelope>"
        ).encode()
        conn = self._connect()
        try:
            conn.request(
                "POST",
                "/",
                data,
                {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{op}"'},
            )
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.conn = None
            raise


Check = Callable[[bytes], bool]


@dataclass
class Setup:
    """What the clients know about the server under test (inherited by forked processes)."""

    port: int
    password: str
    hosts: list[str]
    scratch: list[str]
    batch: int
    report_ids: list[int] = field(default_factory=list)


class Workload:
    """Picks the next call of one client thread and knows what a right answer looks like."""

    def __init__(self, setup: Setup, scratch: str, rng: random.Random) -> None:
        self.setup, self.scratch, self.batch, self.rng = setup, scratch, setup.batch, rng
        self.pending: str | None = None  # an entry added to the scratch whitelist
        kinds = list(MIX)
        self._kinds = kinds
        self._weights = [MIX[k] for k in kinds]

    def _hosts(self, n: int) -> list[str]:
        return self.rng.sample(self.setup.hosts, n)

    def next_call(self, kind: str | None = None) -> tuple[str, str, Check]:
        kind = kind or self.rng.choices(self._kinds, self._weights)[0]
        host = self.rng.choice(self.setup.hosts)
        if kind == "GetTrustReport":
            rid = self.rng.choice(self.setup.report_ids[-2000:])
            tag = f"<tns:report_id>{rid}</tns:report_id>".encode()
            body = f"<t:GetTrustReport><t:report_id>{rid}</t:report_id></t:GetTrustReport>"
            return kind, body, lambda d: tag in d
        if kind == "ListTrustReports":
            body = (
                f"<t:ListTrustReports><t:host>{host}</t:host><t:limit>{LIST_LIMIT}</t:limit>"
                "</t:ListTrustReports>"
            )
            return kind, body, lambda d: b"ListTrustReportsResponse" in d and TRUSTED in d
        if kind == "PollHosts":
            names = self._hosts(self.batch * 2)
            hosts = "".join(f"<t:host>{h}</t:host>" for h in names)
            body = f"<t:PollHosts>{hosts}<t:max_age>86400</t:max_age></t:PollHosts>"
            n = len(names)
            return (
                kind,
                body,
                lambda d: (
                    d.count(b"<tns:cached>true</tns:cached>") == n and d.count(TRUSTED) == 2 * n
                ),
            )
        if kind == "CheckPlacement":
            body = f"<t:CheckPlacement><t:host>{host}</t:host></t:CheckPlacement>"
            return kind, body, lambda d: b"<tns:allowed>true</tns:allowed>" in d
        if kind == "AttestHost":
            body = f"<t:AttestHost><t:host>{host}</t:host></t:AttestHost>"
            return kind, body, lambda d: TRUSTED in d
        if kind == "AttestHosts":
            names = self._hosts(self.batch)
            hosts = "".join(f"<t:host>{h}</t:host>" for h in names)
            n = len(names)
            return (
                kind,
                f"<t:AttestHosts>{hosts}</t:AttestHosts>",
                lambda d: d.count(TRUSTED) == 2 * n,
            )
        # whitelist: add an entry, next time remove it again
        if self.pending is None:
            self.pending = secrets.token_bytes(32).hex()
            op, digest = "AddWhitelistEntries", self.pending
        else:
            op, digest = "RemoveWhitelistEntries", self.pending
            self.pending = None
        entry = (
            "<t:entry><t:kind>pcr</t:kind><t:bank>sha256</t:bank><t:pcr>16</t:pcr>"
            f"<t:digest>{base64.b64encode(bytes.fromhex(digest)).decode()}</t:digest></t:entry>"
        )
        body = f"<t:{op}><t:name>{self.scratch}</t:name>{entry}</t:{op}>"
        return op, body, lambda d: f"{op}Response".encode() in d


@dataclass
class Stats:
    """Per operation: latencies (s) of right answers, error count, a few error samples;
    and every call as (monotonic end time, latency s, ok) for the view over time."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, str] = field(default_factory=dict)
    late: int = 0
    timeline: list[tuple[float, float, bool]] = field(default_factory=list)

    def merge(self, other: Stats) -> None:
        for op, values in other.latencies.items():
            self.latencies[op].extend(values)
        for op, count in other.errors.items():
            self.errors[op] += count
        for key, text in other.samples.items():
            self.samples.setdefault(key, text)
        self.late += other.late
        self.timeline.extend(other.timeline)

    def requests(self, op: str | None = None) -> int:
        ops = [op] if op else OPS
        return sum(len(self.latencies.get(o, ())) + self.errors.get(o, 0) for o in ops)

    def error_count(self) -> int:
        return sum(self.errors.values())

    def plain(self) -> Stats:
        """A copy with plain dicts (picklable)."""
        return Stats(
            dict(self.latencies), dict(self.errors), dict(self.samples), self.late, self.timeline
        )


_FAULT = re.compile(rb"<faultcode>([^<]*)</faultcode>")


def one_call(caller: Caller, work: Workload, stats: Stats, kind: str | None = None) -> None:
    op, body, check = work.next_call(kind)
    started = time.perf_counter()
    try:
        status, data = caller.call(op, body)
    except (OSError, http.client.HTTPException) as exc:
        stats.errors[op] += 1
        stats.samples.setdefault(f"{op}: {type(exc).__name__}", str(exc)[:200])
        stats.timeline.append((time.monotonic(), time.perf_counter() - started, False))
        return
    elapsed = time.perf_counter() - started
    ok = status == 200 and check(data)
    stats.timeline.append((time.monotonic(), elapsed, ok))
    if not ok:
        stats.errors[op] += 1
        fault = _FAULT.search(data)
        key = f"{op}: HTTP {status} {fault.group(1).decode() if fault else 'unexpected answer'}"
        stats.samples.setdefault(key, data[:300].decode(errors="replace"))
        return
    stats.latencies[op].append(elapsed)
    if op in ("AttestHost", "AttestHosts"):
        ids = work.setup.report_ids
        ids.extend(report_ids_in(data))
        if len(ids) > 4000:
            del ids[:2000]


def client_thread(
    setup: Setup, index: int, start_at: float, end_at: float, rate: float | None, stats: Stats
) -> None:
    """Closed loop (``rate`` None) or open loop at ``rate`` calls/s, from ``start_at``
    until ``end_at`` (a thread behind its schedule sends at once, but stops at ``end_at``)."""
    rng = random.Random(index * 7919 + os.getpid())
    work = Workload(setup, setup.scratch[index % len(setup.scratch)], rng)
    caller = Caller(setup.port, setup.password)
    interval = 1.0 / rate if rate else 0.0
    next_at = start_at + rng.random() * interval
    while True:
        now = time.monotonic()
        if now < start_at:
            time.sleep(start_at - now)
            continue
        if now >= end_at:
            break
        if rate:
            if next_at > now:
                if next_at >= end_at:
                    break
                time.sleep(next_at - now)
            elif now - next_at > interval:
                stats.late += 1  # behind schedule: send at once, until end_at at the latest
            next_at += interval
        one_call(caller, work, stats)
    if caller.conn is not None:
        caller.conn.close()


def client_process(
    setup: Setup,
    proc_index: int,
    threads: int,
    start_at: float,
    end_at: float,
    rate: float | None,
    out: Any,
) -> None:
    """One client process: ``threads`` threads; sends its merged Stats to ``out``."""
    per_thread = [Stats() for _ in range(threads)]
    workers = [
        threading.Thread(
            target=client_thread,
            args=(setup, proc_index * 64 + i, start_at, end_at, rate, per_thread[i]),
        )
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    total = Stats()
    for s in per_thread:
        total.merge(s)
    out.send(total.plain())
    out.close()


def run_phase(
    setup: Setup, procs: int, threads: int, seconds: float, rate: float | None = None
) -> tuple[Stats, float]:
    """Run ``procs`` x ``threads`` clients for ``seconds`` (total ``rate`` calls/s, or as
    fast as they can); (merged stats, wall seconds)."""
    ctx = mp.get_context("fork")
    start_at = time.monotonic() + 0.5
    end_at = start_at + seconds
    per_thread_rate = rate / (procs * threads) if rate else None
    pipes, children = [], []
    for p in range(procs):
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=client_process,
            args=(setup, p, threads, start_at, end_at, per_thread_rate, sender),
        )
        child.start()
        sender.close()
        pipes.append(receiver)
        children.append(child)
    total = Stats()
    for receiver in pipes:
        total.merge(receiver.recv())
    for child in children:
        child.join()
    return total, seconds


def pct(values: list[float], q: int) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``, in ms."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank] * 1000
