"""Firmware event-log parse + replay throughput vs the bare hashlib floor.

Run: ``.venv/bin/python bench/bench_replay.py [--seconds 3] [--log NAME]``.
For a real ~117-event crypto-agile log (3 banks) it prints, per operation:

* ``floor``: only the PCR extends the replay does (hashlib over digests
  collected beforehand), measured in this run - no parser can beat it;
* ``parse``: ``parse_event_log`` alone;
* ``replay``: ``replay`` of an already parsed log;
* ``parse+replay``: what a verifier pays per log (goal: >= 5,000 logs/s);
* ``parse+replay sha256``: the same when the policy uses one bank;
* ``parse+events``: parse plus building every ``UntrustedEvent`` (lazy, on
  first use of ``log.events``) and ``decode`` of every event, for context;

and the ratio of each to the floor of the same banks. Timings are the best of
many rounds run in alternation, so machine noise hits every row alike.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from soapattest.tpm.eventlog import decode_log, parse_event_log, replay  # noqa: E402

_SHARED = ROOT.parent / "shared" / "data" / "eventlogs"
EVENTLOG_DIR = _SHARED if _SHARED.is_dir() else ROOT / "tests" / "data" / "real" / "eventlogs"
DEFAULT_LOG = "gotpmtools_ubuntu-2404-amd-sevsnp.bin"


def best_times(funcs: list[Callable[[], object]], seconds: float) -> list[float]:
    """Best wall time of each function, run in alternation."""
    best = [float("inf")] * len(funcs)
    deadline = time.perf_counter() + seconds
    while True:
        for i, func in enumerate(funcs):
            start = time.perf_counter()
            func()
            best[i] = min(best[i], time.perf_counter() - start)
        if time.perf_counter() > deadline:
            return best


def floor_of(raw: bytes, banks: list[str]) -> Callable[[], None]:
    """The extends alone: same PCRs, same digests, same order, hashlib only."""
    log = parse_event_log(raw)
    chains = []
    for bank in banks:
        new = getattr(hashlib, bank)
        size = new().digest_size
        for pcr in sorted({e.pcr for e in log.events if e.extends}):
            digests = [e.digests[bank] for e in log.events if e.pcr == pcr and e.extends]
            chains.append((new, bytes(size), digests))

    def run() -> None:
        for new, start, digests in chains:
            value = start
            for digest in digests:
                value = new(value + digest).digest()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget (default 3)")
    parser.add_argument("--log", default=DEFAULT_LOG, help="log file name in the data set")
    args = parser.parse_args()

    raw = (EVENTLOG_DIR / args.log).read_bytes()
    log = parse_event_log(raw)
    banks = list(log.banks)
    extends = sum(1 for e in log.events if e.extends)
    print(
        f"{args.log}: {len(raw)} bytes, {log.event_count} events, {extends} extends, "
        f"banks {', '.join(banks)}; Python {sys.version.split()[0]}"
    )

    rows: list[tuple[str, Callable[[], object], str]] = [
        ("floor (hashlib extends, all banks)", floor_of(raw, banks), "all"),
        ("floor (hashlib extends, sha256)", floor_of(raw, ["sha256"]), "sha256"),
        ("parse", lambda: parse_event_log(raw), ""),
        ("replay (all banks)", lambda: replay(log), "all"),
        ("parse+replay (all banks)", lambda: replay(parse_event_log(raw)), "all"),
        ("parse+replay sha256", lambda: replay(parse_event_log(raw), banks=["sha256"]), "sha256"),
        ("parse+events+decode", lambda: decode_log(parse_event_log(raw)), ""),
    ]
    # decode is much slower: time it with a smaller share so the rest gets more rounds
    times = best_times([r[1] for r in rows[:-1]], args.seconds * 0.8)
    times += best_times([rows[-1][1]], args.seconds * 0.2)
    floors = {"all": times[0], "sha256": times[1]}
    print(f"{'operation':38} {'us/log':>9} {'logs/s':>9}  ratio to floor")
    for (label, _func, kind), seconds in zip(rows, times, strict=True):
        ratio = f"{seconds / floors[kind]:.2f}x" if kind else "-"
        print(f"{label:38} {seconds * 1e6:9.1f} {1 / seconds:9.0f}  {ratio}")
    goal = 1 / times[4]
    print(
        f"goal >= 5,000 logs/s for parse+replay (all banks): {goal:,.0f} logs/s "
        f"({'met' if goal >= 5000 else 'not met'}); the floor alone allows {1 / times[0]:,.0f}/s"
    )


if __name__ == "__main__":
    main()
