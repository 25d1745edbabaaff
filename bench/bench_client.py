"""Client overhead: the bundled AttestationClient vs raw zeep, same server, same run.

Run: ``.venv/bin/python bench/bench_client.py [--seconds 2]``.

Starts one simulated host and a real server subprocess (``soapattest serve``,
SQLite, one worker, an admin user: every call carries a PasswordDigest
UsernameToken, in every variant), registers the host, imports a whitelist, assigns a policy,
then measures per call, for GetHost, ListHosts and AttestHost:

* ``raw zeep``: ``zeep.Client`` with default settings on the committed WSDL,
  the result left as zeep objects (the baseline);
* ``raw zeep, hardened``: the same with the client's hardened settings
  (strict, no DTD/entities/external, no huge tree) - what hardening costs;
* ``AttestationClient``: the bundled client (hardened zeep, fault mapping,
  conversion to frozen dataclasses).

Each figure is the best of several batches, variants interleaved in rounds
(the machine is noisy); printed are the wall time per call, the client-side
CPU time per call (this process only: serialisation, parsing, conversion) and
the ratios to the baseline. Goal: the bundled client within 1.2x of raw zeep.
"""

from __future__ import annotations

import argparse
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
from zeep.transports import Transport  # noqa: E402
from zeep.wsse.username import UsernameToken  # noqa: E402

from soapattest.client import AttestationClient, hardened_settings  # noqa: E402
from soapattest.model import Combine, Policy, WhitelistRef  # noqa: E402
from soapattest.sim.host import HostSpec  # noqa: E402
from tests.e2e.server_fixture import RunningServer, run_cluster, run_server  # noqa: E402

WSDL = str(ROOT / "wsdl" / "soapattest.wsdl")
BINDING = "{urn:soapattest:v1}SoapAttest"
HOST = "bench-1"


def batch_times(func: Callable[[], object], calls: int) -> tuple[float, float]:
    """(wall seconds per call, process CPU seconds per call) over ``calls`` calls."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        func()
    return (time.perf_counter() - wall0) / calls, (time.process_time() - cpu0) / calls


def measure(
    variants: dict[str, Callable[[], object]], seconds: float, calls: int
) -> dict[str, tuple[float, float]]:
    """Interleaved rounds; per variant the best wall time and the median CPU time."""
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    for func in variants.values():  # warm up (connections, caches)
        func()
    deadline = time.perf_counter() + seconds * len(variants)
    while time.perf_counter() < deadline or len(next(iter(walls.values()))) < 3:
        for name, func in variants.items():
            wall, cpu = batch_times(func, calls)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {name: (min(walls[name]), statistics.median(cpus[name])) for name in variants}


def raw_service(server: RunningServer, settings: zeep.Settings | None) -> object:
    """Plain zeep on the committed WSDL, with the same WS-Security token as the client."""
    session = requests.Session()
    session.trust_env = False
    wsse = None
    if server.username:
        wsse = UsernameToken(server.username, server.password, use_digest=True, zulu_timestamp=True)
    client = zeep.Client(WSDL, transport=Transport(session=session), settings=settings, wsse=wsse)
    return client.create_service(BINDING, server.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=2.0,
        help="measuring time per variant and operation (default 2)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        base = Path(tmp)
        started = time.perf_counter()
        with (
            run_cluster(base / "sim", (HostSpec(HOST),)) as cluster,
            run_server(base / "server", cluster) as server,
        ):
            print(f"one simulated host and the server up in {time.perf_counter() - started:.1f} s")
            client: AttestationClient = server.client()
            client.register_host(HOST, cluster.host(HOST).agent_url, pool="bench")
            client.import_whitelist_from_host(HOST, "golden", range(8))
            client.create_policy(
                Policy("golden-policy", 0, Combine.ALL_OF, (WhitelistRef("golden"),))
            )
            client.assign_policy("golden-policy", pool="bench")
            raw = raw_service(server, None)
            hard = raw_service(server, hardened_settings())
            operations: dict[str, tuple[dict[str, Callable[[], object]], int]] = {
                "GetHost": (
                    {
                        "raw zeep": lambda: raw.GetHost(name=HOST),  # type: ignore[attr-defined]
                        "raw zeep, hardened": lambda: hard.GetHost(name=HOST),  # type: ignore[attr-defined]
                        "AttestationClient": lambda: client.get_host(HOST),
                    },
                    20,
                ),
                "ListHosts": (
                    {
                        "raw zeep": lambda: raw.ListHosts(),  # type: ignore[attr-defined]
                        "raw zeep, hardened": lambda: hard.ListHosts(),  # type: ignore[attr-defined]
                        "AttestationClient": lambda: client.list_hosts(),
                    },
                    20,
                ),
                "AttestHost": (
                    {
                        "raw zeep": lambda: raw.AttestHost(host=HOST),  # type: ignore[attr-defined]
                        "raw zeep, hardened": lambda: hard.AttestHost(host=HOST),  # type: ignore[attr-defined]
                        "AttestationClient": lambda: client.attest_host(HOST),
                    },
                    5,
                ),
            }
            print(
                f"\n{'operation':<11} {'variant':<20} {'wall/call':>10} {'ratio':>6} "
                f"{'client CPU/call':>16} {'ratio':>6}"
            )
            for op, (variants, calls) in operations.items():
                results = measure(variants, args.seconds, calls)
                base_wall, base_cpu = results["raw zeep"]
                for name, (wall, cpu) in results.items():
                    print(
                        f"{op:<11} {name:<20} {wall * 1e3:>8.2f}ms {wall / base_wall:>5.2f}x "
                        f"{cpu * 1e3:>14.2f}ms {cpu / base_cpu:>5.2f}x"
                    )
            client.close()


if __name__ == "__main__":
    main()
