"""``soapattest host ...``, ``attest``, ``poll``, ``nonce``: hosts and their attestation,
through the server's SOAP API (see :mod:`soapattest.cli.connect` for the connection)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from soapattest.cli import inputs
from soapattest.cli import render as rd
from soapattest.cli.common import EXIT_FAILURE, cli_errors, echo_json
from soapattest.cli.connect import PRECEDENCE_HELP, with_client
from soapattest.client import AttestationClient, HostTrust
from soapattest.errors import InvalidArgumentError

PROGRESS_THRESHOLD = 5  # more hosts than this get a progress bar (on a terminal)
MIN_CHUNK = 32  # hosts per AttestHosts call when showing progress (server attests concurrently)


@click.group(epilog=PRECEDENCE_HELP)
def host() -> None:
    """Registered hosts: add (register), list, show, update, re-enroll, remove."""


@host.command("add", epilog=PRECEDENCE_HELP)
@click.argument("name")
@click.argument("agent_url")
@click.option("--pool", help="Pool the host belongs to.")
@click.option("--policy", help="The host's own policy (else its pool's applies).")
@click.option(
    "--label",
    "label_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A label (asset tag); repeatable.",
)
@click.option("--description", help="Free text.")
@click.option(
    "--agent-tls-fingerprint",
    metavar="SHA256",
    help="Pin the https agent's TLS certificate to this SHA-256 fingerprint (hex) instead "
    "of the server's CA check or trust on first use.",
)
@cli_errors
@with_client
def host_add(
    client: AttestationClient,
    as_json: bool,
    name: str,
    agent_url: str,
    pool: str | None,
    policy: str | None,
    label_items: tuple[str, ...],
    description: str | None,
    agent_tls_fingerprint: str | None,
) -> None:
    """Register host NAME whose trust agent listens at AGENT_URL.

    The server validates the host's EK certificate against its configured roots and
    proves the AK by credential activation before it trusts it.
    """
    info = client.register_host(
        name,
        agent_url,
        pool=pool,
        policy=policy,
        labels=inputs.labels(label_items),
        description=description,
        agent_tls_fingerprint=agent_tls_fingerprint,
    )
    if as_json:
        echo_json(rd.host_json(info))
    else:
        rd.console().print(rd.host_table(info))


@host.command("list", epilog=PRECEDENCE_HELP)
@click.option("--pool", help="Only hosts of this pool.")
@click.option("--limit", type=click.IntRange(1, 1000), help="At most this many (default: all).")
@click.option(
    "--offset", type=click.IntRange(0), default=0, show_default=True, help="Skip this many hosts."
)
@cli_errors
@with_client
def host_list(
    client: AttestationClient, as_json: bool, pool: str | None, limit: int | None, offset: int
) -> None:
    """List hosts by name (every page, unless --limit is given)."""
    if limit is None and offset == 0:
        hosts = list(client.iter_hosts(pool=pool))
    else:
        hosts = list(client.list_hosts(pool=pool, offset=offset, limit=limit or 1000))
    if as_json:
        echo_json([rd.host_json(h) for h in hosts])
    else:
        rd.console().print(rd.hosts_table(hosts))


@host.command("show", epilog=PRECEDENCE_HELP)
@click.argument("name")
@cli_errors
@with_client
def host_show(client: AttestationClient, as_json: bool, name: str) -> None:
    """Show host NAME and its TPM identity."""
    info = client.get_host(name)
    if as_json:
        echo_json(rd.host_json(info))
    else:
        rd.console().print(rd.host_table(info))


@host.command("update", epilog=PRECEDENCE_HELP)
@click.argument("name")
@click.option("--agent-url", help="New trust agent URL.")
@click.option("--pool", help="New pool.")
@click.option("--no-pool", is_flag=True, help="Remove the host from its pool.")
@click.option(
    "--label",
    "label_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Replace the labels with these (repeatable).",
)
@click.option("--clear-labels", is_flag=True, help="Remove every label.")
@click.option("--description", help="New description.")
@cli_errors
@with_client
def host_update(
    client: AttestationClient,
    as_json: bool,
    name: str,
    agent_url: str | None,
    pool: str | None,
    no_pool: bool,
    label_items: tuple[str, ...],
    clear_labels: bool,
    description: str | None,
) -> None:
    """Change host NAME's agent URL, pool, labels or description (never its TPM identity)."""
    if pool and no_pool:
        raise InvalidArgumentError("give --pool or --no-pool, not both", argument="pool")
    if label_items and clear_labels:
        raise InvalidArgumentError("give --label or --clear-labels, not both", argument="label")
    new_labels = inputs.labels(label_items) if label_items else ({} if clear_labels else None)
    info = client.update_host(
        name,
        agent_url=agent_url,
        pool="" if no_pool else pool,
        labels=new_labels,
        description=description,
    )
    if as_json:
        echo_json(rd.host_json(info))
    else:
        rd.console().print(rd.host_table(info))


@host.command("reenroll", epilog=PRECEDENCE_HELP)
@click.argument("name")
@cli_errors
@with_client
def host_reenroll(client: AttestationClient, as_json: bool, name: str) -> None:
    """Replace host NAME's TPM identity after a TPM change (every registration check runs
    again; the old identity stays in the history)."""
    info = client.reenroll_host(name)
    if as_json:
        echo_json(rd.host_json(info))
    else:
        rd.console().print(rd.host_table(info))


@host.command("remove", epilog=PRECEDENCE_HELP)
@click.argument("name")
@cli_errors
@with_client
def host_remove(client: AttestationClient, as_json: bool, name: str) -> None:
    """Delete host NAME (its reports and identity history stay)."""
    deleted = client.delete_host(name)
    if as_json:
        echo_json({"host": name, "deleted": deleted})
    else:
        click.echo(f"host {name} removed")


def _targets(
    client: AttestationClient, hosts: Sequence[str], all_hosts: bool, pool: str | None
) -> list[str]:
    names = list(dict.fromkeys(hosts))
    if all_hosts or pool:
        for h in client.iter_hosts(pool=None if all_hosts else pool):
            if h.name not in names:
                names.append(h.name)
    if not names:
        raise InvalidArgumentError("no host: name hosts, or use --all or --pool", argument="host")
    return names


def _attest(
    client: AttestationClient, names: list[str], show_progress: bool, chunk: int | None = None
) -> list[HostTrust]:
    """AttestHosts over ``names``; with a progress bar, in chunks (results in order)."""
    if not show_progress or len(names) <= PROGRESS_THRESHOLD:
        return client.attest_hosts(names)
    chunk = chunk or max(MIN_CHUNK, math.ceil(len(names) / 20))
    results: list[HostTrust] = []
    columns = (TextColumn("attesting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=rd.console(stderr=True), transient=True) as progress:
        task = progress.add_task("attest", total=len(names))
        for start in range(0, len(names), chunk):
            part = names[start : start + chunk]
            results.extend(client.attest_hosts(part))
            progress.advance(task, len(part))
    return results


def _print_trust(results: list[HostTrust], as_json: bool, title: str) -> None:
    if as_json:
        echo_json([rd.host_trust_json(t) for t in results])
    else:
        rd.console().print(rd.trust_table(results, title))
    if not all(t.trusted for t in results):
        sys.exit(EXIT_FAILURE)


@click.command(epilog=PRECEDENCE_HELP)
@click.argument("hosts", nargs=-1)
@click.option("--all", "all_hosts", is_flag=True, help="Attest every registered host.")
@click.option("--pool", help="Attest every host of this pool.")
@cli_errors
@with_client
def attest(
    client: AttestationClient,
    as_json: bool,
    hosts: tuple[str, ...],
    all_hosts: bool,
    pool: str | None,
) -> None:
    """Attest HOSTS now (fresh nonce, quote, event log, appraisal) and print their trust.

    Uses the bulk AttestHosts call (the server contacts the agents concurrently); with
    more than a handful of hosts a progress bar runs on a terminal. Exits with 1 unless
    every host is TRUSTED.
    """
    names = _targets(client, hosts, all_hosts, pool)
    results = _attest(client, names, show_progress=not as_json and sys.stderr.isatty())
    _print_trust(results, as_json, "Attestation")


@click.command(epilog=PRECEDENCE_HELP)
@click.argument("hosts", nargs=-1)
@click.option("--pool", help="Poll every host of this pool (besides HOSTS).")
@click.option(
    "--max-age",
    type=click.IntRange(0),
    required=True,
    metavar="SECONDS",
    help="Serve reports younger than this; attest the other hosts now.",
)
@cli_errors
@with_client
def poll(
    client: AttestationClient, as_json: bool, hosts: tuple[str, ...], pool: str | None, max_age: int
) -> None:
    """Current trust of HOSTS and/or a pool: recent reports are served as they are
    (cached=yes), the other hosts are attested now. Exits with 1 unless every host is
    TRUSTED."""
    if not hosts and not pool:
        raise InvalidArgumentError("no host: name hosts or use --pool", argument="host")
    results = client.poll_hosts(list(hosts), pool=pool, max_age=max_age)
    _print_trust(results, as_json, f"Trust (max age {max_age} s)")


@click.command(epilog=PRECEDENCE_HELP)
@click.argument("host_name", metavar="HOST")
@cli_errors
@with_client
def nonce(client: AttestationClient, as_json: bool, host_name: str) -> None:
    """Issue a single-use nonce bound to HOST (hex), for a quote you fetch yourself and
    submit with VerifyQuote."""
    value = client.issue_nonce(host_name)
    if as_json:
        echo_json({"host": host_name, "nonce": value.hex()})
    else:
        click.echo(value.hex())
