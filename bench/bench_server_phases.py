"""Where one VerifyQuote or AttestHost spends its time, phase by phase (issue 4).

The same in-process set-up as ``bench_server.py`` (real WSGI application, SQLite,
benchmark-only load agents); wall-clock timers wrap the phases of the request path
(authentication, plan, appraisal, storing, codec, XML guard). Prints the CPU time
per call and each phase's share.

    .venv/bin/python bench/bench_server_phases.py [--op vq|ah] [--calls 300]
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import soapattest.security.xmlguard as xmlguard
import soapattest.server.attestation as attestation
import soapattest.service.base as base
from bench.bench_server import LOG, envelope, setup, verify_quote_requests, wsgi_call
from bench.load_agents import LoadAgents, start
from soapattest.service.app import build_wsgi
from soapattest.service.codec import Codec

SPENT: collections.Counter[str] = collections.Counter()


def timed(owner: Any, name: str, label: str) -> None:
    """Wrap ``owner.name`` so that its wall time adds up under ``label``."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - t0

    setattr(owner, name, wrapper)


def instrument() -> None:
    timed(base, "authenticate_call", "authentication (lookup, replay cache)")
    timed(attestation, "_plan", "plan (host, policy, whitelists)")
    timed(attestation, "appraise", "appraisal (verify/)")
    timed(attestation, "_record", "storing (inside its transaction)")
    timed(attestation, "_gather", "agent calls (wall: includes the agents)")
    timed(Codec, "envelope", "codec: write the response")
    timed(Codec, "read_args", "codec: read the request")
    timed(xmlguard, "parse_request", "XML guard parse")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--op", choices=["vq", "ah"], default="vq")
    ap.add_argument("--calls", type=int, default=300)
    args = ap.parse_args()
    agents = LoadAgents(4, LOG)
    base_url, proc = start(agents)
    try:
        with tempfile.TemporaryDirectory() as d:
            ctx = setup(Path(d), agents, base_url)
            instrument()
            app = build_wsgi(ctx)
            n, warm = args.calls, 20
            if args.op == "vq":
                requests_ = verify_quote_requests(ctx, agents, n + warm)
            else:
                requests_ = [
                    envelope("<t:AttestHost><t:host>h0</t:host></t:AttestHost>")
                    for _ in range(n + warm)
                ]
            for r in requests_[:warm]:
                wsgi_call(app, r)
            SPENT.clear()
            c0 = time.process_time()
            for r in requests_[warm:]:
                wsgi_call(app, r)
            cpu = (time.process_time() - c0) / n
            ctx.close()
    finally:
        proc.terminate()
    name = "VerifyQuote" if args.op == "vq" else "AttestHost"
    print(f"{name}: {cpu * 1e3:.2f} ms CPU per call ({n} calls)")
    for label, seconds in SPENT.most_common():
        share = seconds / n
        print(f"  {label:38} {share * 1e3:6.2f} ms  {share / cpu:5.0%}")
    rest = cpu - sum(SPENT.values()) / n
    print(f"  {'rest (schema, transactions, ...)':38} {rest * 1e3:6.2f} ms  {rest / cpu:5.0%}")


if __name__ == "__main__":
    main()
