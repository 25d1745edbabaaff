"""Trust agent overhead: a quote through the agent over HTTP vs the same quote done in-process.

Run: ``.venv/bin/python bench/bench_agent.py [--seconds 3] [--scale N]``.

Default mode (one simulated host, well under a minute): on the same swtpm, in
the same run, measures the time per quote of

* ``TPM2_Quote only``: one raw ESAPI quote through ``TpmAccess.esys`` (the floor);
* ``TpmAccess.quote``: what the agent does per GetQuote (PCR reads before and
  after, the quote, the PCR-digest check) - the in-process baseline;
* ``agent, raw HTTP``: GetQuote as a prebuilt SOAP envelope over a kept-alive
  HTTP session (agent overhead: HTTP + Spyne + base64);
* ``agent, zeep``: the same through zeep (what the server's client pays).

and prints the ratios to the in-process baseline. A swtpm serves one client
at a time, so the in-process and the agent rounds alternate (the agent is
stopped during in-process rounds); the best time of each is kept.

``--scale N`` also starts N hosts (two at a time) and prints the start time
and the resident memory (swtpm + agent) per host, then stops them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import zeep  # noqa: E402

from soapattest.agent.tpm import TpmAccess  # noqa: E402
from soapattest.sim import HostSpec, SimCluster, SimHost  # noqa: E402
from soapattest.tpm.pcr import PcrSelection  # noqa: E402

SELECTION = {"sha256": list(range(24))}
ENVELOPE = (
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:a="urn:soapattest:agent:v1"><s:Body><a:GetQuote><a:nonce>{nonce}</a:nonce>'
    '<a:selection><a:bank>sha256</a:bank>{pcrs}</a:selection></a:GetQuote></s:Body></s:Envelope>'
)


def per_op(func: Callable[[], object], seconds: float) -> float:
    """Best of several batches: seconds per call."""
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(5):
            func()
        best = min(best, (time.perf_counter() - start) / 5)
    return best


def in_process(host: SimHost, seconds: float) -> tuple[float, float]:
    """(raw TPM2_Quote, TpmAccess.quote) seconds per op, agent stopped meanwhile."""
    host.stop_agent()
    sel = PcrSelection.from_mapping(SELECTION)
    try:
        with TpmAccess(host.swtpm.tcti) as tpm:
            tpm.ensure_ak("ecc", 0x81010002)
            from tpm2_pytss.types import TPM2B_DATA, TPML_PCR_SELECTION, TPMT_SIG_SCHEME

            tpml, _ = TPML_PCR_SELECTION.unmarshal(sel.to_bytes())
            ak = tpm.esys.tr_from_tpmpublic(0x81010002)
            raw = per_op(lambda: tpm.esys.quote(ak, tpml, TPM2B_DATA(os.urandom(32)),
                                                TPMT_SIG_SCHEME(scheme=0x0010)), seconds)
            full = per_op(lambda: tpm.quote(os.urandom(32), sel), seconds)
    finally:
        host.start_agent()
    return raw, full


def over_http(host: SimHost, seconds: float) -> tuple[float, float]:
    """(raw HTTP envelope, zeep) seconds per GetQuote."""
    import base64

    session = requests.Session()
    pcrs = "".join(f"<a:pcr>{i}</a:pcr>" for i in SELECTION["sha256"])

    def raw() -> None:
        body = ENVELOPE.format(nonce=base64.b64encode(os.urandom(32)).decode(), pcrs=pcrs)
        r = session.post(host.agent_url, data=body.encode(), timeout=30,
                         headers={"Content-Type": "text/xml; charset=utf-8"})
        assert r.status_code == 200 and b"GetQuoteResponse" in r.content, r.content[:300]

    client = zeep.Client(host.agent_url + "?wsdl")
    sel = [{"bank": b, "pcr": p} for b, p in SELECTION.items()]
    return (per_op(raw, seconds),
            per_op(lambda: client.service.GetQuote(nonce=os.urandom(32), selection=sel), seconds))


def quote_bench(seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp, \
            SimCluster(tmp, agent_log_level="WARNING") as cluster:
        host = cluster.start_host("bench", log="gotpmtools_rhel8-uefi")
        rounds = 3
        rows: dict[str, list[float]] = {k: [] for k in ("raw", "full", "http", "zeep")}
        for _ in range(rounds):  # alternate so machine noise hits both sides
            raw, full = in_process(host, seconds / (4 * rounds))
            http, z = over_http(host, seconds / (4 * rounds))
            for k, v in zip(rows, (raw, full, http, z), strict=True):
                rows[k].append(v)
        best = {k: min(v) for k, v in rows.items()}
        base = best["full"]
        print(f"quote of 24 sha256 PCRs, ECC P-256 AK, swtpm {host.swtpm.tcti}")
        print(f"{'path':28} {'ms/quote':>9} {'x in-process':>13}")
        rows_out = (("TPM2_Quote only (floor)", "raw"), ("TpmAccess.quote (baseline)", "full"),
                    ("agent, raw HTTP", "http"), ("agent, zeep client", "zeep"))
        for label, key in rows_out:
            print(f"{label:28} {best[key] * 1000:9.2f} {best[key] / base:13.2f}")
        print(f"agent overhead over in-process: {(best['http'] - base) * 1000:.2f} ms/quote "
              f"(ratio {best['http'] / base:.2f}x; with zeep {best['zeep'] / base:.2f}x)")


def scale_bench(count: int, parallel: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, \
            SimCluster(tmp, agent_log_level="WARNING") as cluster:
        logs = ["gotpmtools_rhel8-uefi", "gotpmtools_arch-linux-workstation",
                "gotpmtools_glinux-alex", "gotpmtools_debian-10"]
        specs = [HostSpec(f"h{i:03d}", logs[i % len(logs)]) for i in range(count)]
        start = time.monotonic()
        hosts = cluster.start_hosts(specs, parallel=parallel)
        elapsed = time.monotonic() - start
        rss = [h.rss_kib() for h in hosts]
        swtpm = [r["swtpm"] / 1024 for r in rss]
        agent = [r["agent"] / 1024 for r in rss]
        print(f"{count} hosts started in {elapsed:.1f}s ({elapsed / count:.2f}s per host, "
              f"{parallel} at a time)")
        print(f"RSS per host: swtpm {statistics.mean(swtpm):.1f} MiB, agent "
              f"{statistics.mean(agent):.1f} MiB (max {max(agent):.1f}), total "
              f"{sum(swtpm) + sum(agent):.0f} MiB")
        restart = time.monotonic()
        cluster.restart_host(hosts[0].name)
        print(f"restart of one host: {time.monotonic() - restart:.2f}s")
        stop = time.monotonic()
    print(f"stop of {count} hosts: {time.monotonic() - stop:.1f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time budget of the quote bench")
    ap.add_argument("--scale", type=int, default=0, metavar="N",
                    help="also start N hosts and report start time and memory")
    ap.add_argument("--parallel", type=int, default=2, help="hosts started at a time (--scale)")
    args = ap.parse_args()
    quote_bench(args.seconds)
    if args.scale:
        scale_bench(args.scale, args.parallel)


if __name__ == "__main__":
    main()
