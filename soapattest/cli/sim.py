"""``soapattest sim``: simulated hosts (swtpm + trust agent) replaying real event logs.

``sim start`` runs in the foreground until Ctrl-C (or SIGTERM) and then stops
every swtpm and agent it started; ``sim list-logs`` shows the bundled logs.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from soapattest.cli.common import cli_errors, echo_json
from soapattest.errors import EventLogError
from soapattest.sim.boot import TAMPER_MODES
from soapattest.sim.catalog import IMA_FOR_LOG, bundled_logs, unsupported_reason
from soapattest.tpm.eventlog import parse_event_log


@click.group()
def sim() -> None:
    """Simulated hosts: swtpm TPMs that replay real event logs, each with a trust agent."""


def _simulatable_logs() -> list[str]:
    names = []
    for b in bundled_logs():
        try:
            if unsupported_reason(parse_event_log(b.path.read_bytes())) is None:
                names.append(b.name)
        except EventLogError:
            continue
    return names


@sim.command("list-logs")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@cli_errors
def list_logs(as_json: bool) -> None:
    """List the bundled event logs and whether each can be simulated."""
    rows: list[dict[str, Any]] = []
    for b in bundled_logs():
        try:
            log = parse_event_log(b.path.read_bytes())
            reason = unsupported_reason(log)
            info = {"format": log.format, "banks": list(log.banks), "events": log.event_count,
                    "startup_locality": log.startup_locality}
        except EventLogError as exc:
            reason, info = f"does not parse: {exc.message}", {}
        rows.append({"name": b.name, "simulatable": reason is None, "reason": reason,
                     "ima": IMA_FOR_LOG.get(b.name), "description": b.description,
                     "source": b.source, **info})
    if as_json:
        echo_json(rows)
        return
    table = Table(title="Bundled event logs")
    for col in ("name", "format", "banks", "events", "locality", "IMA", "simulatable"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r.get("format", "-"), ",".join(r.get("banks", [])),
                      str(r.get("events", "-")), str(r.get("startup_locality") or 0),
                      "yes" if r["ima"] else "",
                      "yes" if r["simulatable"] else f"no: {r['reason']}")
    _console().print(table)


def _console() -> Console:
    """A console that does not squeeze tables to 80 columns when piped."""
    return Console(width=None if sys.stdout.isatty() else 200)


@sim.command("start")
@click.option("--hosts", "count", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Number of hosts (named host-001, host-002, ...).")
@click.option("--log", "logs", multiple=True, metavar="NAME|PATH",
              help="Event log(s) to boot, assigned round-robin (repeatable). "
              "Default: every simulatable bundled log.")
@click.option("--tamper", "tampered", multiple=True, metavar="HOST",
              help="Host name to boot with a tampered boot loader event (repeatable).")
@click.option("--tamper-mode", type=click.Choice(TAMPER_MODES), default="event",
              show_default=True,
              help="event: tampered digest in PCRs and served log (fails the whitelist); "
              "pcr: tampered PCRs, original log served (fails the replay).")
@click.option("--ima", is_flag=True,
              help="Also replay and serve the bundled IMA list on hosts whose log has one.")
@click.option("--ak-type", type=click.Choice(["ecc", "rsa"]), default="ecc", show_default=True)
@click.option("--dir", "base_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Cluster directory (CA, host state, inventory.json).")
@click.option("--parallel", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Hosts started at the same time.")
@click.option("--agent-log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
              default="INFO", show_default=True)
@click.option("--no-wait", is_flag=True,
              help="Stop the hosts right after starting them (smoke test, timing).")
@cli_errors
def start(count: int, logs: tuple[str, ...], tampered: tuple[str, ...], tamper_mode: str,
          ima: bool, ak_type: str, base_dir: Path, parallel: int, agent_log_level: str,
          no_wait: bool) -> None:
    """Start simulated hosts and keep them running until Ctrl-C.

    Prints a table of hosts and agent URLs and writes DIR/inventory.json
    (with the CA root certificate the attestation server must trust).
    """
    from soapattest.sim.cluster import SimCluster  # loads tpm2-pytss: only when needed
    from soapattest.sim.host import HostSpec

    names = [f"host-{i:03d}" for i in range(1, count + 1)]
    unknown = sorted(set(tampered) - set(names))
    if unknown:
        raise click.BadParameter(f"no such host: {', '.join(unknown)}", param_hint="--tamper")
    chosen = list(logs) or _simulatable_logs()
    specs = []
    for i, name in enumerate(names):
        log_name = chosen[i % len(chosen)]
        specs.append(HostSpec(name, log_name, tamper_mode if name in tampered else None, ak_type,
                              True if ima and log_name in IMA_FOR_LOG else None))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    with SimCluster(base_dir, agent_log_level=agent_log_level) as cluster:
        hosts = cluster.start_hosts(specs, parallel=parallel)
        elapsed = time.monotonic() - started
        table = Table(title=f"{len(hosts)} simulated hosts ({elapsed:.1f}s)")
        for col in ("host", "agent URL", "event log", "banks", "tamper", "IMA"):
            table.add_column(col)
        for h in hosts:
            table.add_row(h.name, h.agent_url, h.log_name, ",".join(h.plan.banks),
                          h.tamper or "", h.ima_name or "")
        _console().print(table)
        click.echo(f"CA root certificate: {cluster.ca_root_cert}")
        click.echo(f"Inventory: {cluster.inventory_path}")
        if not no_wait:
            click.echo("Running; press Ctrl-C to stop.")
            while not stop.wait(1.0):
                pass
        click.echo("Stopping hosts...")
    for s, handler in previous.items():
        signal.signal(s, handler)
    click.echo(f"Stopped {len(hosts)} host(s).")
