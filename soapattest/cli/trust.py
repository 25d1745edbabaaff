"""``soapattest report|assertion|pool|placement|audit``: what trust consumers ask the
server, through its SOAP API."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from soapattest.cli import inputs
from soapattest.cli import render as rd
from soapattest.cli.common import EXIT_FAILURE, cli_errors, echo_json
from soapattest.cli.connect import PRECEDENCE_HELP, with_client
from soapattest.client import AttestationClient
from soapattest.errors import InvalidArgumentError, ReportNotFoundError
from soapattest.model import TrustStatus, WorkloadRequirements

STATUSES = click.Choice([s.value for s in TrustStatus])


@click.group(epilog=PRECEDENCE_HELP)
def report() -> None:
    """Stored trust reports: history and the checks behind a verdict."""


@report.command("list", epilog=PRECEDENCE_HELP)
@click.option("--host", "host_name", help="Only reports of this host.")
@click.option("--status", type=STATUSES, help="Only reports with this verdict.")
@click.option("--since", metavar="TIME", help="Created at or after (ISO 8601, UTC default).")
@click.option("--until", metavar="TIME", help="Created before (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@cli_errors
@with_client
def report_list(
    client: AttestationClient,
    as_json: bool,
    host_name: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
) -> None:
    """List trust reports, newest first."""
    page = client.list_trust_reports(
        host=host_name,
        status=status,
        since=inputs.timestamp(since, "--since"),
        until=inputs.timestamp(until, "--until"),
        offset=offset,
        limit=limit,
    )
    if as_json:
        echo_json(
            {
                "total": page.total,
                "offset": page.offset,
                "reports": [rd.report_json(r) for r in page.items],
            }
        )
    else:
        rd.console().print(rd.reports_table(page.items, page.total))


@report.command("show", epilog=PRECEDENCE_HELP)
@click.argument("report_id", type=click.IntRange(1), required=False)
@click.option("--host", "host_name", help="Show the newest report of this host instead.")
@cli_errors
@with_client
def report_show(
    client: AttestationClient, as_json: bool, report_id: int | None, host_name: str | None
) -> None:
    """Show report REPORT_ID (or the newest of --host): every check, failing ones in
    red with the failing events highlighted. Exits with 1 unless the report is TRUSTED."""
    if (report_id is None) == (host_name is None):
        raise InvalidArgumentError("give REPORT_ID or --host", argument="report_id")
    if report_id is None:
        page = client.list_trust_reports(host=host_name, limit=1)
        if not page.items:
            raise ReportNotFoundError(f"host '{host_name}' has no report yet", report_id=0)
        rep = page.items[0]
    else:
        rep = client.get_trust_report(report_id)
    if as_json:
        echo_json(rd.report_json(rep))
    else:
        out = rd.console()
        for table in rd.report_tables(rep):
            out.print(table)
    if rep.status is not TrustStatus.TRUSTED:
        sys.exit(EXIT_FAILURE)


@click.command(epilog=PRECEDENCE_HELP)
@click.argument("host_name", metavar="HOST")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the assertion XML to FILE instead of stdout.",
)
@click.option(
    "--verify",
    "check",
    is_flag=True,
    help="Verify the signature with the server's signing certificate "
    "(GetSigningCertificate) and the validity period now.",
)
@click.option(
    "--max-age",
    type=click.IntRange(0),
    metavar="SECONDS",
    help="Refuse if the newest report is older.",
)
@cli_errors
@with_client
def assertion(
    client: AttestationClient,
    as_json: bool,
    host_name: str,
    out_file: Path | None,
    check: bool,
    max_age: int | None,
) -> None:
    """Fetch the signed SAML 2.0 trust assertion about HOST's newest report.

    Prints the XML (or writes it to --out). With --verify, the signature is checked
    against the certificate the same server publishes: pin that certificate out of
    band unless the connection is authenticated TLS. Exits with 1 when the assertion
    does not say TRUSTED.
    """
    from soapattest.server.saml import verify_assertion  # signxml: imported only when used

    signed = client.get_trust_assertion(host_name, max_age=max_age)
    verified = None
    if check:
        verified = verify_assertion(
            signed.xml, client.get_signing_certificate(), now=datetime.now(UTC)
        )
        if verified.host != host_name:
            raise InvalidArgumentError(
                f"the assertion is about {verified.host!r}, not {host_name!r}", argument="host"
            )
    if out_file is not None:
        out_file.write_bytes(signed.xml)
    if as_json:
        doc: dict[str, object] = {
            "host": host_name,
            "report_id": signed.report_id,
            "status": signed.status.value,
            "file": str(out_file) if out_file else None,
            "assertion": None if out_file else signed.xml.decode("utf-8"),
            "verified": verified is not None,
        }
        if verified is not None:
            doc.update(
                assertion_id=verified.assertion_id,
                issuer=verified.issuer,
                not_before=rd.when(verified.not_before),
                not_on_or_after=rd.when(verified.not_on_or_after),
                attributes=verified.attributes,
            )
        echo_json(doc)
    else:
        if out_file is None:
            click.echo(signed.xml.decode("utf-8"))
        else:
            click.echo(
                f"assertion about {host_name} (report {signed.report_id}, "
                f"{signed.status.value}) written to {out_file}"
            )
        if verified is not None:
            click.echo(
                f"signature OK: issuer {verified.issuer}, host {verified.host}, "
                f"{verified.attributes.get('trust_status', '?')}, valid until "
                f"{rd.when(verified.not_on_or_after)}",
                err=out_file is None,
            )
    trusted = verified.trusted if verified is not None else signed.status is TrustStatus.TRUSTED
    if not trusted:
        sys.exit(EXIT_FAILURE)


# ---------------------------------------------------------------- pools and placement


def _requirements_options(func: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option(
            "--max-age",
            type=click.IntRange(0),
            metavar="SECONDS",
            help="The newest report must be younger (default 3600).",
        ),
        click.option(
            "--in-pool",
            "pools",
            multiple=True,
            metavar="POOL",
            help="The host must be in one of these pools (repeatable).",
        ),
        click.option(
            "--with-policy",
            "policies",
            multiple=True,
            metavar="POLICY",
            help="The host's policy must be one of these (repeatable).",
        ),
        click.option(
            "--label",
            "label_items",
            multiple=True,
            metavar="KEY=VALUE",
            help="The host must carry this label (repeatable).",
        ),
        click.option(
            "--component",
            "components",
            multiple=True,
            help="A report component that must be TRUSTED, e.g. eventlog, "
            "whitelist:rhel8 (repeatable).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _requirements(
    max_age: int | None,
    pools: tuple[str, ...],
    policies: tuple[str, ...],
    label_items: tuple[str, ...],
    components: tuple[str, ...],
) -> WorkloadRequirements:
    return WorkloadRequirements(
        max_report_age=3600 if max_age is None else max_age,
        pools=pools,
        policies=policies,
        labels=inputs.labels(label_items),
        components=components,
    )


@click.group(epilog=PRECEDENCE_HELP)
def pool() -> None:
    """Pools of hosts: their policy, size, and which hosts are trusted now."""


@pool.command("list", epilog=PRECEDENCE_HELP)
@cli_errors
@with_client
def pool_list(client: AttestationClient, as_json: bool) -> None:
    """List pools with their policy and number of hosts."""
    items = client.list_pools()
    if as_json:
        echo_json([rd.pool_json(p) for p in items])
    else:
        rd.console().print(rd.pools_table(items))


@pool.command("trusted", epilog=PRECEDENCE_HELP)
@click.argument("pool_name", metavar="POOL")
@_requirements_options
@cli_errors
@with_client
def pool_trusted(
    client: AttestationClient,
    as_json: bool,
    pool_name: str,
    max_age: int | None,
    pools: tuple[str, ...],
    policies: tuple[str, ...],
    label_items: tuple[str, ...],
    components: tuple[str, ...],
) -> None:
    """Which hosts of POOL are trusted now (allowed first, with the reasons)."""
    reqs = _requirements(max_age, pools, policies, label_items, components)
    decisions = client.list_trusted_hosts(pool_name, reqs)
    if as_json:
        echo_json(
            {
                "pool": pool_name,
                "trusted": [d.host for d in decisions if d.allowed],
                "decisions": [rd.decision_json(d) for d in decisions],
            }
        )
    else:
        allowed = sum(d.allowed for d in decisions)
        rd.console().print(
            rd.decisions_table(
                decisions, f"Pool {pool_name}: {allowed} of {len(decisions)} trusted"
            )
        )


@click.command(epilog=PRECEDENCE_HELP)
@click.argument("host_name", metavar="HOST")
@_requirements_options
@cli_errors
@with_client
def placement(
    client: AttestationClient,
    as_json: bool,
    host_name: str,
    max_age: int | None,
    pools: tuple[str, ...],
    policies: tuple[str, ...],
    label_items: tuple[str, ...],
    components: tuple[str, ...],
) -> None:
    """May a workload with these requirements run on HOST now? Prints ALLOW or DENY with
    every reason; exits with 1 on DENY."""
    reqs = _requirements(max_age, pools, policies, label_items, components)
    decision = client.check_placement(host_name, reqs)
    if as_json:
        echo_json(rd.decision_json(decision))
    else:
        rd.console().print(rd.decisions_table([decision], f"Placement on {host_name}"))
    if not decision.allowed:
        sys.exit(EXIT_FAILURE)


# ---------------------------------------------------------------- audit


@click.group(epilog=PRECEDENCE_HELP)
def audit() -> None:
    """The append-only audit log (trust decisions, changes to hosts, whitelists, policies)."""


@audit.command("list", epilog=PRECEDENCE_HELP)
@click.option("--actor", help="Only records of this user.")
@click.option("--action", help="Only this action, e.g. host.register, trust.decision.")
@click.option("--target", help="Only records about this object (host, whitelist ...).")
@click.option("--since", metavar="TIME", help="At or after (ISO 8601, UTC default).")
@click.option("--until", metavar="TIME", help="Before (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@cli_errors
@with_client
def audit_list(
    client: AttestationClient,
    as_json: bool,
    actor: str | None,
    action: str | None,
    target: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
) -> None:
    """List audit records, newest first."""
    page = client.list_audit_records(
        actor=actor,
        action=action,
        target=target,
        since=inputs.timestamp(since, "--since"),
        until=inputs.timestamp(until, "--until"),
        offset=offset,
        limit=limit,
    )
    if as_json:
        echo_json(
            {
                "total": page.total,
                "offset": page.offset,
                "records": [rd.audit_json(a) for a in page.items],
            }
        )
    else:
        rd.console().print(rd.audit_table(page.items, page.total))
