"""Load test (issue 6): a mixed workload against a real ``soapattest serve`` over HTTP.

What runs (loopback only, in a temporary directory):

- ``soapattest serve`` as a subprocess: gunicorn, 2 workers, SQLite (WAL);
- benchmark-only load agents (:mod:`bench.load_agents`, software AKs - UNSAFE) in a
  child process; their hosts, a golden whitelist, a policy, scratch whitelists and a
  user with the admin role are written by this script straight into the store before
  the server starts (never through a production path);
- client processes (``--procs``), each with several threads, sending raw SOAP over
  keep-alive HTTP connections with a fresh WS-Security PasswordDigest token per call.

The mix: readers GetTrustReport, ListTrustReports (pages of 10), PollHosts (max_age of
a day, so served from stored reports), CheckPlacement; writers AttestHost, AttestHosts (batches
of ``--batch``), and AddWhitelistEntries / RemoveWhitelistEntries alternating on one
scratch whitelist per client thread (so whitelist versions stay small).

Before the clock starts every host is attested 10 times (full ListTrustReports pages
from the start: the workload stays the same while the test runs). Phases, all within
``--duration`` seconds:

1. idle baseline: every operation alone, one at a time (the latency reference);
2. peak: closed loop at 2, 4, 8, 16 client threads (``--procs`` x 1, 2, 4, 8), each
   for a twentieth of the duration (3..20 s); the best throughput is the peak;
3. steady: open loop at ``--load`` (default 80 %) of the peak, with as many client
   threads as at the peak, for the rest of the time.

Reported: requests and errors per operation, throughput, p50/p95/p99 latency per
operation (and p50 against the idle baseline), throughput and p99 per minute, the RSS
of all gunicorn processes sampled every ``--sample`` seconds (first and last minute
averages and the maximum), worker restarts, the database size, and the CPU the server
used (in cores) against the machine's busy and steal time - a server that waits on locks
leaves CPU idle. Nothing is asserted: it is a benchmark.

    .venv/bin/python bench/bench_load.py                 # 10 minutes
    .venv/bin/python bench/bench_load.py --duration 30   # quick run
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_agents import LoadAgents, start
from bench.load_clients import (
    LIST_LIMIT,
    MIX,
    OPS,
    TRUSTED,
    USER,
    Caller,
    Setup,
    Stats,
    Workload,
    one_call,
    pct,
    report_ids_in,
    run_phase,
)
from soapattest.model import (
    Combine,
    EntryKind,
    Host,
    HostIdentity,
    Policy,
    WhitelistEntry,
    WhitelistRef,
)
from soapattest.security.credentials import create_digest_key
from soapattest.security.users import ensure_user
from soapattest.server.context import utc_now
from soapattest.store import Store
from soapattest.tpm.eventlog import parse_event_log

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "tests" / "data" / "real" / "eventlogs" / "gotpmtools_rhel8-uefi.bin"
PEAK_LEVELS = (1, 2, 4, 8)  # client threads per process in the peak search


# ---------------------------------------------------------------------- setup


def prepare(
    state: Path, agents: LoadAgents, agents_url: str, scratch: int
) -> tuple[str, list[str], list[str]]:
    """Create the database: the user, a golden whitelist, a policy, the load agents' hosts
    (software AKs: benchmark-only enrolment) and ``scratch`` whitelists.
    Returns (password, host names, scratch whitelist names)."""
    state.mkdir(parents=True)
    store = Store(f"sqlite:///{state / 'soapattest.sqlite'}")
    store.upgrade()
    now = utc_now()
    password = secrets.token_urlsafe(18)
    key = create_digest_key(state / "digest.key")
    ensure_user(store, USER, password, ("admin",), actor="bench-load", now=now, digest_key=key)
    log = parse_event_log(agents.raw_log)
    golden = {
        WhitelistEntry(EntryKind.EVENT, "sha256", e.pcr, e.digests["sha256"])
        for e in log.events
        if e.extends and e.pcr < 8
    }
    hosts = [f"h{i}" for i in range(len(agents.hosts))]
    names = [f"scratch-{i}" for i in range(scratch)]
    with store.transaction() as tx:
        tx.whitelists.create(
            "golden", tuple(sorted(golden)), description="", actor="bench", now=now
        )
        tx.policies.create(
            Policy("p", 0, Combine.ALL_OF, (WhitelistRef("golden"),), banks=("sha256",)),
            actor="bench",
            now=now,
        )
        for name, tpm in zip(hosts, agents.hosts, strict=True):
            # Benchmark-only enrolment of a software AK (no production path does this).
            tx.hosts.add(Host(name=name, agent_url=f"{agents_url}{name}/", policy="p"), now)
            identity = HostIdentity(
                b"-", b"", tpm.ak_public_bytes, tpm.ak_name, now, tpm.qualified_signer
            )
            tx.hosts.set_identity(name, identity, now)
        base = (WhitelistEntry(EntryKind.PCR, "sha256", 16, b"\x00" * 32),)
        for name in names:
            tx.whitelists.create(name, base, description="scratch", actor="bench", now=now)
    store.close()
    return password, hosts, names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, state: Path, port: int, workers: int, threads: int) -> None:
    path.write_text(
        "[server]\n"
        f"listen = 127.0.0.1:{port}\n"
        f"workers = {workers}\n"
        f"threads = {threads}\n"
        f"state_dir = {state}\n"
        "log_level = WARNING\n"
        "[auth]\n"
        f"digest_key = {state / 'digest.key'}\n",
        encoding="utf-8",
    )


@contextlib.contextmanager
def serve(config: Path, log_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``soapattest serve --config`` until the block ends (SIGTERM, then SIGKILL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOAPATTEST_")}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "soapattest", "serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited: {log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/?wsdl")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not come up within 60 s")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------- memory


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int, int]:
    """(all, idle + iowait, steal) ticks of the machine from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values[:8]), values[3] + values[4], values[7]


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic
    rss_kib: int  # arbiter + workers
    worker_max_kib: int  # the largest worker
    server_ticks: int  # CPU of arbiter + workers (the workers of the moment)
    machine: tuple[int, int, int]


class Sampler(threading.Thread):
    """Samples RSS and CPU of the gunicorn arbiter and its workers every ``interval`` s."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[Sample] = []
        self.workers_seen: set[int] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            pids = [self.pid, *children_of(self.pid)]
            self.workers_seen.update(pids[1:])
            rss = [rss_kib(p) for p in pids]
            self.samples.append(
                Sample(
                    time.monotonic(),
                    sum(rss),
                    max(rss[1:], default=0),
                    sum(cpu_ticks(p) for p in pids),
                    machine_ticks(),
                )
            )
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def window(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.at <= end]

    def cpu_report(self, start: float, end: float) -> str:
        """Server CPU (cores), machine busy and steal (% of all CPUs) over a window."""
        inside = self.window(start, end)
        if len(inside) < 2:
            return "too short for CPU figures"
        first, last = inside[0], inside[-1]
        hz = os.sysconf("SC_CLK_TCK")
        server = (last.server_ticks - first.server_ticks) / hz / (last.at - first.at)
        total = last.machine[0] - first.machine[0]
        busy = 1 - (last.machine[1] - first.machine[1]) / total
        steal = (last.machine[2] - first.machine[2]) / total
        return (
            f"server CPU {server:.2f} cores; machine busy {busy:.0%}, steal {steal:.0%} "
            f"(of {os.cpu_count()} CPUs)"
        )


# ---------------------------------------------------------------------- report


def print_table(stats: Stats, seconds: float, idle: dict[str, float]) -> None:
    print(
        f"{'operation':24} {'requests':>9} {'errors':>7} {'req/s':>7} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p50/idle':>9}"
    )
    for op in OPS:
        lat = stats.latencies.get(op, [])
        n = stats.requests(op)
        p50 = pct(lat, 50)
        ratio = p50 / idle[op] if idle.get(op) else float("nan")
        print(
            f"{op:24} {n:9d} {stats.errors.get(op, 0):7d} {n / seconds:7.1f} {p50:8.1f} "
            f"{pct(lat, 95):8.1f} {pct(lat, 99):8.1f} {pct(lat, 100):8.1f} {ratio:8.2f}x"
        )
    everything = [v for vs in stats.latencies.values() for v in vs]
    print(
        f"{'all':24} {stats.requests():9d} {stats.error_count():7d} "
        f"{stats.requests() / seconds:7.1f} {pct(everything, 50):8.1f} {pct(everything, 95):8.1f} "
        f"{pct(everything, 99):8.1f} {pct(everything, 100):8.1f}"
    )
    for key, text in list(stats.samples.items())[:8]:
        print(f"  error sample: {key}: {text[:160]!r}")


def idle_baseline(setup: Setup, calls: int) -> tuple[dict[str, float], int]:
    """p50 latency (ms) of each operation alone, one call at a time; and the errors."""
    rng = random.Random(1)
    work = Workload(setup, setup.scratch[0], rng)
    caller = Caller(setup.port, setup.password)
    stats = Stats()
    kinds = [k for k in MIX if k != "whitelist"] + ["whitelist", "whitelist"]
    for _ in range(calls):
        for kind in kinds:
            one_call(caller, work, stats, kind)
    if stats.error_count():
        print(f"idle baseline errors: {dict(stats.errors)} {stats.samples}")
    return {op: pct(stats.latencies.get(op, []), 50) for op in OPS}, stats.error_count()


def warm_up(setup: Setup) -> None:
    """Attest every host :data:`LIST_LIMIT` times: from the start PollHosts and
    CheckPlacement have reports to serve and ListTrustReports full pages (the workload
    does not get heavier while the test runs)."""
    caller = Caller(setup.port, setup.password, timeout=600)
    hosts = "".join(f"<t:host>{h}</t:host>" for h in setup.hosts)
    for _ in range(LIST_LIMIT):
        status, data = caller.call("AttestHosts", f"<t:AttestHosts>{hosts}</t:AttestHosts>")
        trusted = data.count(TRUSTED) // 2
        if status != 200 or trusted != len(setup.hosts):
            raise RuntimeError(f"warm-up: {trusted}/{len(setup.hosts)} TRUSTED: {data[:500]!r}")
        setup.report_ids.extend(report_ids_in(data))


def print_timeline(stats: Stats, start: float, end: float, window: float) -> None:
    """Throughput and p99 of each ``window`` seconds of the phase (is it steady?)."""
    rates, p99s = [], []
    t = start
    while t + window / 2 < end:
        inside = [(lat, ok) for done, lat, ok in stats.timeline if t <= done < t + window]
        span = min(window, end - t)
        rates.append(f"{len(inside) / span:.0f}")
        p99s.append(f"{pct([lat for lat, ok in inside if ok], 99):.0f}")
        t += window
    print(f"req/s per {window:.0f} s: {' '.join(rates)}")
    print(f"p99 ms per {window:.0f} s: {' '.join(p99s)}")


def db_size(state: Path) -> int:
    return sum(p.stat().st_size for p in state.glob("soapattest.sqlite*"))


# ---------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=600, help="seconds for phases 2 and 3")
    ap.add_argument("--hosts", type=int, default=100, help="load agents' hosts")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--batch", type=int, default=5, help="hosts per AttestHosts (PollHosts: 2x)")
    ap.add_argument("--load", type=float, default=0.8, help="steady load as a fraction of peak")
    ap.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval, s")
    ap.add_argument("--idle-calls", type=int, default=15, help="idle baseline calls per op")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=16, help="threads per worker ([server])")
    args = ap.parse_args()

    step = max(3.0, min(20.0, args.duration / 20))
    print(
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
        f"({os.cpu_count()} CPUs); duration {args.duration:.0f} s, peak steps of {step:.0f} s"
    )
    agents = LoadAgents(args.hosts, LOG)
    agents_url, agents_proc = start(agents)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
            run(Path(tmp), agents, agents_url, args, step)
    finally:
        agents_proc.terminate()


def run(
    tmp: Path, agents: LoadAgents, agents_url: str, args: argparse.Namespace, step: float
) -> None:
    state = tmp / "state"
    scratch_count = args.procs * 2 * PEAK_LEVELS[-1]
    password, hosts, scratch = prepare(state, agents, agents_url, scratch_count)
    port = free_port()
    write_config(tmp / "soapattest.conf", state, port, args.workers, args.threads)
    with serve(tmp / "soapattest.conf", tmp / "server.log", port) as server:
        setup = Setup(port, password, hosts, scratch, args.batch)
        sampler = Sampler(server.pid, args.sample)
        sampler.start()
        began = time.monotonic()
        warm_up(setup)
        idle, idle_errors = idle_baseline(setup, args.idle_calls)
        print("idle p50 (ms): " + ", ".join(f"{op} {idle[op]:.1f}" for op in OPS))

        # Phase 2: peak throughput, closed loop.
        best_rate, best_threads = 0.0, PEAK_LEVELS[0]
        peak_errors = 0
        measured_start = time.monotonic()
        for threads in PEAK_LEVELS:
            level_start = time.monotonic()
            stats, seconds = run_phase(setup, args.procs, threads, step)
            peak_errors += stats.error_count()
            ok = stats.requests() - stats.error_count()
            rate = ok / seconds
            every = [v for vs in stats.latencies.values() for v in vs]
            print(
                f"peak search: {args.procs}x{threads} client threads: {rate:6.1f} req/s, "
                f"{stats.error_count()} errors, p99 {pct(every, 99):.0f} ms; "
                f"{sampler.cpu_report(level_start, time.monotonic())}"
            )
            if rate > best_rate:
                best_rate, best_threads = rate, threads
        # Phase 3: steady load at args.load x peak, open loop, for the rest of the time.
        remaining = max(10.0, args.duration - (time.monotonic() - measured_start))
        target = best_rate * args.load
        threads = best_threads  # the concurrency at which the server reached its peak
        print(
            f"peak {best_rate:.1f} req/s at {args.procs}x{best_threads} threads; steady load "
            f"{target:.1f} req/s ({args.load:.0%}) on {args.procs}x{threads} threads for "
            f"{remaining:.0f} s"
        )
        steady_from = time.monotonic() + 0.5
        stats, seconds = run_phase(setup, args.procs, threads, remaining, rate=target)
        steady_to = steady_from + seconds
        sampler.stop()
        total_time = time.monotonic() - began
        alive = server.poll() is None

    print()
    print(
        f"steady phase: {seconds:.0f} s, target {target:.1f} req/s, "
        f"achieved {stats.requests() / seconds:.1f} req/s "
        f"({stats.requests() / seconds / best_rate:.2f}x peak), "
        f"{stats.late} calls sent late (>1 interval behind schedule)"
    )
    print_table(stats, seconds, idle)
    print_timeline(stats, steady_from, steady_to, min(60.0, max(5.0, seconds / 10)))
    minute = min(60.0, seconds / 3)
    first = [s.rss_kib for s in sampler.window(steady_from, steady_from + minute)]
    last = [s.rss_kib for s in sampler.window(steady_to - minute, steady_to)]
    steady_all = [s.rss_kib for s in sampler.window(steady_from, steady_to)]
    mib = 1 / 1024
    print(f"steady phase: {sampler.cpu_report(steady_from, steady_to)}")
    if first and last and steady_all:
        f_avg, l_avg = statistics.mean(first) * mib, statistics.mean(last) * mib
        print(
            f"server RSS (arbiter + {args.workers} workers), {len(steady_all)} samples every "
            f"{args.sample:g} s: first {minute:.0f} s avg {f_avg:.1f} MiB, last {minute:.0f} s "
            f"avg {l_avg:.1f} MiB ({l_avg / f_avg:.3f}x), max {max(steady_all) * mib:.1f} MiB"
        )
        worker_max = max(s.worker_max_kib for s in sampler.window(steady_from, steady_to))
        print(f"largest worker RSS in the steady phase: {worker_max * mib:.1f} MiB")
    restarts = len(sampler.workers_seen) - args.workers
    print(
        f"errors: idle baseline {idle_errors}, peak search {peak_errors}, "
        f"steady {stats.error_count()}"
    )
    print(
        f"worker processes seen: {len(sampler.workers_seen)} ({restarts} restarts); server "
        f"{'still running' if alive else 'EXITED'}; database {db_size(state) / 2**20:.1f} MiB; "
        f"total {total_time:.0f} s; load average at end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
