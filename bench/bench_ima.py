"""IMA replay throughput on the real 4k-entry lists vs the raw hashlib floor.

Run: ``.venv/bin/python bench/bench_ima.py [--seconds 0.5]``. For each list and
bank, prints entries replayed per second by ``replay_ima`` and by a bare hashlib
loop doing the same extends (measured in this run), and their ratio (how much
slower soapattest is than the floor). Parsing rate is printed for context.
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

from soapattest.tpm.ima import ImaEntry, parse_ima, replay_ima  # noqa: E402

_SHARED = ROOT.parent / "shared" / "data" / "ima"
IMA_DIR = _SHARED if _SHARED.is_dir() else ROOT / "tests" / "data" / "real" / "ima"
LISTS = (
    "imaverify_vm_ascii_runtime_measurements_sha256",
    "imaverify_vm_e5460c7_binary_runtime_measurements_sha256",
    "imaverify_vm_binary_runtime_measurements_sha1",
)


def best_times(funcs: list[Callable[[], object]], seconds: float) -> list[float]:
    """Best wall time of each function, run in alternation (so machine noise hits all alike)."""
    best = [float("inf")] * len(funcs)
    deadline = time.perf_counter() + seconds
    while True:
        for i, func in enumerate(funcs):
            start = time.perf_counter()
            func()
            best[i] = min(best[i], time.perf_counter() - start)
        if time.perf_counter() > deadline:
            return best


def floor(entries: tuple[ImaEntry, ...], bank: str) -> Callable[[], bytes]:
    """The bare loop: the same extends with hashlib, no checks, digests precomputed
    for the recorded bank, template data hashed for the other."""
    new = getattr(hashlib, bank)
    size = new().digest_size
    ff = b"\xff" * size
    recorded = entries[0].template_hash_alg == bank
    items = [
        (True, ff)
        if e.is_violation
        else (recorded, e.template_digest if recorded else e.template_data)
        for e in entries
    ]

    def run() -> bytes:
        value = bytes(size)
        for is_digest, item in items:
            value = new(value + (item if is_digest else new(item).digest())).digest()
        return value

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = parser.parse_args()
    print(f"{'list':58} {'bank':6} {'entries/s':>10} {'floor/s':>10} {'ratio':>6}")
    for name in LISTS:
        data = (IMA_DIR / name).read_bytes()
        log = parse_ima(data)
        n = len(log.entries)
        for bank in ("sha1", "sha256"):
            base_fn = floor(log.entries, bank)
            if base_fn() != replay_ima(log.entries, bank):
                raise SystemExit(f"floor and replay_ima disagree on {name} {bank}")
            ours, base = best_times(
                [lambda b=bank, e=log.entries: replay_ima(e, b), base_fn], args.seconds
            )
            print(f"{name:58} {bank:6} {n / ours:10.0f} {n / base:10.0f} {ours / base:6.2f}")
        (parse_time,) = best_times([lambda d=data: parse_ima(d)], args.seconds)
        print(f"{'  parse (' + log.kind + ', with detection)':58} {'':6} {n / parse_time:10.0f}")


if __name__ == "__main__":
    main()
