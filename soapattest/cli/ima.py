"""``soapattest ima``: inspect and replay Linux IMA measurement lists locally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from soapattest.cli.common import cli_errors, echo_json
from soapattest.errors import ImaLogLimitError
from soapattest.tpm.constants import HASH_BY_NAME
from soapattest.tpm.ima import (
    BINARY_DIGEST_CANDIDATES,
    DEFAULT_LIMITS,
    KIND_BINARY,
    ImaLog,
    detect_ima_kind,
    find_template_digest_mismatches,
    parse_ima,
    replay_ima_pcrs,
)


@click.group()
def ima() -> None:
    """Linux IMA runtime measurement lists (ascii or binary)."""


def _read_bounded(path: Path, limit: int) -> bytes:
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ImaLogLimitError(f"{path} is larger than the limit of {limit} bytes")
    return data


def _summary(path: Path, log: ImaLog, banks: tuple[str, ...]) -> dict[str, Any]:
    ba = log.boot_aggregate_entry
    pcrs: dict[str, dict[str, str]] = {}
    for bank in banks:
        values = replay_ima_pcrs(log.entries, bank)
        pcrs[bank] = {str(p): v.hex() for p, v in sorted(values.items())}
    return {
        "file": str(path),
        "kind": log.kind,
        "template_hash_alg": log.template_hash_alg,
        "entries": len(log.entries),
        "violations": log.violations,
        "templates": dict(sorted(log.templates.items())),
        "boot_aggregate": (
            f"{ba.file_hash_alg}:{ba.file_hash.hex()}"
            if ba is not None and ba.file_hash is not None
            else None
        ),
        "template_digest_mismatches": len(find_template_digest_mismatches(log.entries)),
        "trailing_partial": log.trailing_partial,
        "pcrs": pcrs,
    }


@ima.command("replay")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--bank",
    "banks",
    multiple=True,
    type=click.Choice(sorted(HASH_BY_NAME)),
    help="PCR bank to replay into (repeatable; default: the list's template digest bank).",
)
@click.option(
    "--binary-template-alg",
    type=click.Choice(BINARY_DIGEST_CANDIDATES),
    default=None,
    help="Template digest algorithm of a binary list (default: detected from its structure).",
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Ignore a truncated last entry (a list read while it grows).",
)
@cli_errors
def replay(
    file: Path,
    as_json: bool,
    banks: tuple[str, ...],
    binary_template_alg: str | None,
    allow_partial: bool,
) -> None:
    """Replay FILE (an ascii or binary IMA list) into PCR 10 and summarise it.

    Prints the PCR value per bank, the entry and violation counts, and the
    boot_aggregate entry's digest. Malformed input exits with status 2.
    """
    data = _read_bounded(file, DEFAULT_LIMITS.max_bytes)
    binary = detect_ima_kind(data) == KIND_BINARY
    template_alg = binary_template_alg if binary else None
    log = parse_ima(data, template_hash_alg=template_alg, allow_trailing_partial=allow_partial)
    summary = _summary(file, log, tuple(dict.fromkeys(banks or (log.template_hash_alg,))))
    if as_json:
        echo_json(summary)
        return
    click.echo(f"file: {summary['file']}")
    click.echo(f"format: {log.kind} (template digests: {log.template_hash_alg})")
    click.echo(f"entries: {summary['entries']}")
    click.echo(f"violations: {summary['violations']}")
    templates = ", ".join(f"{k}={v}" for k, v in summary["templates"].items())
    click.echo(f"templates: {templates or '-'}")
    click.echo(f"boot_aggregate: {summary['boot_aggregate'] or 'none'}")
    click.echo(f"template digest mismatches: {summary['template_digest_mismatches']}")
    if log.trailing_partial:
        click.echo(f"ignored trailing bytes: {log.trailing_partial}")
    for bank, values in summary["pcrs"].items():
        for pcr, value in values.items():
            click.echo(f"PCR {pcr} {bank}: {value}")
