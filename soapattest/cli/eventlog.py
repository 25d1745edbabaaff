"""``soapattest eventlog``: inspect and replay TCG PC Client firmware event logs locally.

Nothing here is verified against a TPM: the values printed are what the log
*claims*; only a match with a verified quote makes them trustworthy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from soapattest.cli.common import cli_errors, echo_json
from soapattest.errors import EventLogLimitError
from soapattest.tpm.constants import HASH_BY_NAME, PCR_COUNT
from soapattest.tpm.eventlog import (
    DEFAULT_LIMITS,
    EventLog,
    UntrustedEvent,
    decode_event,
    parse_event_log,
    replay,
)

DIGEST_SHOWN = 16  # hex characters of each digest in the table


@click.group()
def eventlog() -> None:
    """TCG PC Client firmware event logs (binary_bios_measurements)."""


def _read_log(path: Path) -> EventLog:
    """Read at most the size limit (plus one byte, to detect more) and parse."""
    limit = DEFAULT_LIMITS.max_log_bytes
    with path.open("rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise EventLogLimitError(f"{path} is larger than the limit of {limit} bytes", offset=0)
    return parse_event_log(raw)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _event_json(event: UntrustedEvent, uintn: int) -> dict[str, Any]:
    decoded = decode_event(event, uintn_bytes=uintn)
    return {
        "index": event.index,
        "offset": event.offset,
        "pcr": event.pcr,
        "type": event.type_name,
        "type_value": event.untrusted_type,
        "extends": event.extends,
        "digests": {bank: d.hex() for bank, d in event.digests.items()},
        "data_size": len(event.data),
        "summary": decoded.summary,
        "fields": _jsonable(decoded.fields),
        "digest_verified": decoded.digest_verified,
    }


def _verified_mark(value: bool | None) -> str:
    if value is True:
        return "[green]=H(data)[/green]"
    if value is False:
        return "[red]!=H(data)[/red]"
    return ""


def _console() -> Console:
    """A console for tables; wide when stdout is not a terminal (pipes, files)."""
    console = Console(soft_wrap=False)
    return console if console.is_terminal else Console(soft_wrap=False, width=200)


@eventlog.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--pcr",
    "pcrs",
    multiple=True,
    type=click.IntRange(0, PCR_COUNT - 1),
    help="Only events of this PCR (repeatable).",
)
@cli_errors
def show(file: Path, as_json: bool, pcrs: tuple[int, ...]) -> None:
    """List the events of FILE with their digests and decoded data.

    Event types and data are untrusted; "=H(data)" marks events whose digests
    are the hash of their data. Malformed input exits with status 2.
    """
    log = _read_log(file)
    events = [e for e in log.events if not pcrs or e.pcr in pcrs]
    uintn = log.uintn_bytes
    if as_json:
        echo_json(
            {
                "format": log.format,
                "banks": list(log.banks),
                "startup_locality": log.startup_locality,
                "hcrtm": log.hcrtm,
                "events": [_event_json(e, uintn) for e in events],
            }
        )
        return
    table = Table(
        title=escape(
            f"{file.name}: {log.format}, {log.event_count} events, banks {', '.join(log.banks)}"
        )
    )
    table.add_column("#", justify="right")
    table.add_column("PCR", justify="right")
    table.add_column("type")
    table.add_column("digests", no_wrap=True)
    table.add_column("data")
    for event in events:
        decoded = decode_event(event, uintn_bytes=uintn)
        digests = "\n".join(
            f"{bank}:{digest.hex()[:DIGEST_SHOWN]}" for bank, digest in event.digests.items()
        )
        mark = _verified_mark(decoded.digest_verified)
        table.add_row(
            str(event.index),
            str(event.pcr),
            event.type_name + ("" if event.extends else " (not extended)"),
            digests,
            f"{escape(decoded.summary)} {mark}".strip(),
        )
    _console().print(table)
    if log.startup_locality is not None or log.hcrtm:
        click.echo(f"startup locality: {log.startup_locality}, H-CRTM: {log.hcrtm}")


@eventlog.command("replay")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--bank",
    "banks",
    multiple=True,
    type=click.Choice(sorted(HASH_BY_NAME)),
    help="Replay only this bank (repeatable; default: every bank of the log).",
)
@cli_errors
def replay_cmd(file: Path, as_json: bool, banks: tuple[str, ...]) -> None:
    """Replay FILE and print the PCR values it produces, per bank.

    Every PCR the log extends is listed (and PCR 0 when a StartupLocality or
    H-CRTM event sets its initial value). Malformed input exits with status 2.
    """
    log = _read_log(file)
    values = replay(log, banks=banks or None)
    pcrs = {
        bank: {str(p): v.hex() for p, v in sorted(by_pcr.items())}
        for bank, by_pcr in values.items()
    }
    if as_json:
        echo_json({"format": log.format, "events": log.event_count, "pcrs": pcrs})
        return
    table = Table(title=escape(f"{file.name}: {log.format}, {log.event_count} events"))
    table.add_column("PCR", justify="right")
    for bank in values:
        table.add_column(bank, no_wrap=True)
    all_pcrs = sorted({p for by_pcr in values.values() for p in by_pcr})
    for pcr in all_pcrs:
        table.add_row(
            str(pcr), *(values[b][pcr].hex() if pcr in values[b] else "-" for b in values)
        )
    _console().print(table)
