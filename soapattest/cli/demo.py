"""``soapattest demo``: the whole product on one machine, on the embedded store."""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from soapattest.cli.common import cli_errors, echo_json

STYLE = {"TRUSTED": "bold green", "UNTRUSTED": "bold red", "UNKNOWN": "bold yellow"}


def _table(result: Any) -> Table:
    table = Table(title="Trust of the simulated hosts", show_lines=False)
    table.add_column("host")
    table.add_column("trust")
    table.add_column("report")
    table.add_column("why (failing checks)")
    for h in result.hosts:
        reasons = "\n".join(f"{f['check']}: {f['reason']}" for f in h["failures"]) or "-"
        table.add_row(
            h["name"],
            f"[{STYLE.get(h['trust'], '')}]{h['trust']}[/]",
            str(h["report_id"] or "-"),
            reasons,
        )
    return table


@click.command()
@click.option(
    "--hosts",
    "count",
    type=click.IntRange(1, 200),
    default=4,
    show_default=True,
    help="Simulated hosts to start (the last one boots a tampered bootloader).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Working directory (swtpm state, database, logs). Default: a new temporary directory.",
)
@click.option("--port", type=click.IntRange(1, 65535), help="Server port (default: a free one).")
@click.option("--once", is_flag=True, help="Run the story, print the result and stop everything.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the final trust table as JSON (per host: name, trust, failing checks).",
)
@click.option("--no-tamper", is_flag=True, help="Boot every host from the pristine log.")
@cli_errors
def demo(
    count: int, directory: Path | None, port: int | None, once: bool, as_json: bool, no_tamper: bool
) -> None:
    """Run the product's main job on this machine.

    Starts COUNT simulated hosts (each a swtpm booted from a real firmware event
    log, with its own trust agent) and the attestation server on SQLite;
    registers the hosts (EK certificate chain + credential activation),
    captures golden values from host-001, creates a policy, attests every host
    and shows the trust table - the tampered host UNTRUSTED with the reason -
    and a signed SAML assertion. Then keeps running until Ctrl-C (unless --once).
    """
    from soapattest.demo import run_demo

    console = Console(stderr=as_json)
    workdir = directory or Path(tempfile.mkdtemp(prefix="soapattest-demo-"))

    def say(text: str) -> None:
        console.print(f"[cyan]>[/] {text}")

    with Progress(
        TextColumn("[cyan]>[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(f"{what} hosts", total=total)
            bar.update(tasks[what], completed=done)

        result, cluster, server = run_demo(
            workdir, hosts=count, say=say, progress=progress, tamper_host=not no_tamper, port=port
        )
    try:
        if as_json:
            echo_json(result.as_json())
        else:
            console.print(_table(result))
            if result.assertion:
                out = workdir / f"assertion-{result.assertion_host}.xml"
                out.write_text(result.assertion, encoding="utf-8")
                console.print(
                    f"\n[bold]Signed SAML trust assertion for {result.assertion_host}"
                    f"[/] (saved to {out}):"
                )
                console.print(result.assertion, markup=False, highlight=False, soft_wrap=True)
            console.print(f"\nWSDL: [bold]{result.wsdl}[/]")
            console.print(
                f"Server: {result.url}  user: {result.username}  password file: "
                f"{workdir / 'admin-password'}  (PasswordDigest)"
            )
            console.print(f"Working directory: {workdir}")
        if not once:
            console.print("Running. Press Ctrl-C to stop the server and the simulated hosts.")
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    finally:
        console.print("Stopping the server and the simulated hosts...")
        server.stop()
        cluster.close()
