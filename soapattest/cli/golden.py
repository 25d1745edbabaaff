"""``soapattest whitelist ...`` and ``soapattest policy ...``: golden measurements and the
policies that combine them, through the server's SOAP API."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.text import Text

from soapattest.cli import inputs
from soapattest.cli import render as rd
from soapattest.cli.common import cli_errors, echo_json
from soapattest.cli.connect import PRECEDENCE_HELP, with_client
from soapattest.client import AttestationClient
from soapattest.errors import InvalidArgumentError
from soapattest.model import (
    Combine,
    ImaMode,
    ImaRequirements,
    Policy,
    SecureBootRequirements,
    Whitelist,
    WhitelistEntry,
    WhitelistRef,
)

ENTRY_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)
BANKS = click.Choice(["sha1", "sha256", "sha384", "sha512", "sm3_256"])



expected_version_option = click.option(
    "--expected-version",
    type=click.IntRange(1),
    help="Refuse unless this is the latest version (optimistic locking).",
)

@click.group(epilog=PRECEDENCE_HELP)
def whitelist() -> None:
    """Whitelists of golden measurements (every change makes a new version).

    Entry files (create/add/remove) are JSON (a list of entries, or what
    'whitelist show --json' prints) or CSV with a header kind,bank,pcr,digest[,path,label];
    digests in hex.
    """


def _print_whitelist(wl: Whitelist, as_json: bool) -> None:
    if as_json:
        echo_json(rd.whitelist_json(wl))
        return
    out = rd.console()
    title = f"Whitelist {wl.name} v{wl.version}"
    if wl.source_host:
        title += f" (imported from {wl.source_host})"
    out.print(rd.entries_table(wl.entries, f"{title}: {len(wl.entries)} entries"))


@whitelist.command("import", epilog=PRECEDENCE_HELP)
@click.argument("host_name", metavar="HOST")
@click.argument("name")
@click.option(
    "--pcr",
    "pcrs",
    multiple=True,
    default=("0-7",),
    show_default=True,
    help="PCRs to capture: indices and ranges, e.g. 0-7,14 (repeatable).",
)
@click.option(
    "--bank",
    "banks",
    multiple=True,
    type=BANKS,
    default=("sha256",),
    show_default=True,
    help="Banks to capture (repeatable).",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["pcr", "event"]),
    help="Capture PCR values and/or event digests (default both).",
)
@click.option(
    "--mode",
    type=click.Choice(["CREATE", "NEW_VERSION", "MERGE"]),
    default="CREATE",
    show_default=True,
    help="Create, replace in a new version, or add to it.",
)
@click.option("--description", help="Free text.")
@cli_errors
@with_client
def whitelist_import(
    client: AttestationClient,
    as_json: bool,
    host_name: str,
    name: str,
    pcrs: tuple[str, ...],
    banks: tuple[str, ...],
    kinds: tuple[str, ...],
    mode: str,
    description: str | None,
) -> None:
    """Capture whitelist NAME from known-good HOST: PCR values of a fresh verified quote,
    event digests of the PCRs whose event log replays to it."""
    wl = client.import_whitelist_from_host(
        host_name,
        name,
        inputs.pcr_list(pcrs),
        banks=banks,
        kinds=kinds or ("pcr", "event"),
        mode=mode,
        description=description,
    )
    _print_whitelist(wl, as_json)


@whitelist.command("create", epilog=PRECEDENCE_HELP)
@click.argument("name")
@click.argument("file", type=ENTRY_FILE)
@click.option("--description", help="Free text.")
@cli_errors
@with_client
def whitelist_create(
    client: AttestationClient, as_json: bool, name: str, file: Path, description: str | None
) -> None:
    """Create whitelist NAME (version 1) from the entries in FILE (JSON or CSV)."""
    wl = client.create_whitelist(name, inputs.read_entries(file), description=description)
    _print_whitelist(wl, as_json)


@whitelist.command("list", epilog=PRECEDENCE_HELP)
@cli_errors
@with_client
def whitelist_list(client: AttestationClient, as_json: bool) -> None:
    """List the latest version of every whitelist."""
    items = client.list_whitelists()
    if as_json:
        echo_json([rd.whitelist_summary_json(w) for w in items])
    else:
        rd.console().print(rd.whitelists_table(items))


@whitelist.command("show", epilog=PRECEDENCE_HELP)
@click.argument("ref", metavar="NAME[@VERSION]")
@cli_errors
@with_client
def whitelist_show(client: AttestationClient, as_json: bool, ref: str) -> None:
    """Show a whitelist version (default: the latest) with its entries."""
    name, version = inputs.name_version(ref, "whitelist")
    _print_whitelist(client.get_whitelist(name, version), as_json)


def _diff(old: Whitelist, new: Whitelist) -> tuple[list[WhitelistEntry], list[WhitelistEntry]]:
    old_keys = {e.key() for e in old.entries}
    new_keys = {e.key() for e in new.entries}
    added = sorted(e for e in new.entries if e.key() not in old_keys)
    removed = sorted(e for e in old.entries if e.key() not in new_keys)
    return added, removed


@whitelist.command("diff", epilog=PRECEDENCE_HELP)
@click.argument("first", metavar="A")
@click.argument("second", metavar="[B]", required=False)
@click.option("--from", "from_version", type=click.IntRange(1), help="Old version of A.")
@click.option(
    "--to", "to_version", type=click.IntRange(1), help="New version of A (default: the latest)."
)
@cli_errors
@with_client
def whitelist_diff(
    client: AttestationClient,
    as_json: bool,
    first: str,
    second: str | None,
    from_version: int | None,
    to_version: int | None,
) -> None:
    """Entries added and removed from A to B (each NAME[@VERSION]), or between two
    versions of one whitelist: 'diff NAME --from 1 --to 2'. Labels are not compared."""
    if second is not None:
        if from_version or to_version:
            raise InvalidArgumentError(
                "give A B, or NAME --from V1 [--to V2], not both", argument="from"
            )
        old = client.get_whitelist(*inputs.name_version(first, "A"))
        new = client.get_whitelist(*inputs.name_version(second, "B"))
    else:
        if from_version is None:
            raise InvalidArgumentError("give two whitelists, or --from VERSION", argument="from")
        name, _ = inputs.name_version(first, "A")
        old = client.get_whitelist(name, from_version)
        new = client.get_whitelist(name, to_version)
    added, removed = _diff(old, new)
    if as_json:
        echo_json(
            {
                "from": {"name": old.name, "version": old.version},
                "to": {"name": new.name, "version": new.version},
                "added": [rd.entry_json(e) for e in added],
                "removed": [rd.entry_json(e) for e in removed],
            }
        )
        return
    out = rd.console()
    head = f"{old.name}@{old.version} -> {new.name}@{new.version}"
    if not added and not removed:
        out.print(f"{head}: same entries")
        return
    out.print(Text(f"{head}: {len(added)} added, {len(removed)} removed", style="bold"))
    if added:
        out.print(rd.entries_table(added, "+ added", style="green"))
    if removed:
        out.print(rd.entries_table(removed, "- removed", style="red"))


@whitelist.command("add", epilog=PRECEDENCE_HELP)
@click.argument("name")
@click.argument("file", type=ENTRY_FILE)
@expected_version_option
@cli_errors
@with_client
def whitelist_add(
    client: AttestationClient, as_json: bool, name: str, file: Path, expected_version: int | None
) -> None:
    """Add the entries of FILE to whitelist NAME (a new version)."""
    wl = client.add_whitelist_entries(
        name, inputs.read_entries(file), expected_version=expected_version
    )
    _print_whitelist(wl, as_json)


@whitelist.command("remove", epilog=PRECEDENCE_HELP)
@click.argument("name")
@click.argument("file", type=ENTRY_FILE)
@expected_version_option
@cli_errors
@with_client
def whitelist_remove(
    client: AttestationClient, as_json: bool, name: str, file: Path, expected_version: int | None
) -> None:
    """Remove the entries of FILE from whitelist NAME (a new version; each must be there)."""
    wl = client.remove_whitelist_entries(
        name, inputs.read_entries(file), expected_version=expected_version
    )
    _print_whitelist(wl, as_json)


@whitelist.command("delete", epilog=PRECEDENCE_HELP)
@click.argument("name")
@cli_errors
@with_client
def whitelist_delete(client: AttestationClient, as_json: bool, name: str) -> None:
    """Delete whitelist NAME (refused while a policy uses it)."""
    deleted = client.delete_whitelist(name)
    if as_json:
        echo_json({"whitelist": name, "deleted": deleted})
    else:
        click.echo(f"whitelist {name} deleted")


# ---------------------------------------------------------------- policies


@click.group(epilog=PRECEDENCE_HELP)
def policy() -> None:
    """Policies: whitelists combined (ALL_OF / ANY_OF), banks, Secure Boot and IMA rules;
    assigned to hosts or pools. Every change makes a new version."""


def _policy_options(func: click.decorators.FC) -> click.decorators.FC:
    options = [
        click.option(
            "--whitelist",
            "whitelists",
            multiple=True,
            metavar="NAME[@VERSION]",
            help="A whitelist (no version: the latest at evaluation); repeatable.",
        ),
        click.option(
            "--combine",
            type=click.Choice(["ALL_OF", "ANY_OF"]),
            help="Every whitelist must match, or at least one (default ALL_OF).",
        ),
        click.option(
            "--bank",
            "banks",
            multiple=True,
            type=BANKS,
            help="Banks every quote must cover (default sha256); repeatable.",
        ),
        click.option(
            "--event-log/--no-event-log",
            "use_event_log",
            default=None,
            help="Appraise the event log (default yes).",
        ),
        click.option(
            "--secure-boot/--no-secure-boot",
            "secure_boot",
            default=None,
            help="Require UEFI Secure Boot enabled (PCR 7 events).",
        ),
        click.option(
            "--dbx-must-contain",
            multiple=True,
            metavar="SHA256",
            help="A revocation (hex SHA-256) dbx must hold; implies --secure-boot.",
        ),
        click.option(
            "--allowed-authority",
            multiple=True,
            metavar="SHA256",
            help="Fingerprint (hex) of a db certificate allowed to verify images; "
            "implies --secure-boot.",
        ),
        click.option(
            "--ima",
            "ima_mode",
            type=click.Choice(["off", "integrity", "allowlist"]),
            help="IMA appraisal mode (default off).",
        ),
        click.option(
            "--ima-bank", type=BANKS, help="Bank PCR 10 is appraised in (default sha256)."
        ),
        click.option(
            "--signature-hash",
            "signature_hashes",
            multiple=True,
            type=click.Choice(["sha256", "sha384", "sha512", "sha1"]),
            help="Accepted AK signature hashes (default sha256, sha384, sha512).",
        ),
        click.option("--min-rsa-bits", type=click.IntRange(1024), help="Default 2048."),
        click.option("--min-ecc-bits", type=click.IntRange(256), help="Default 256."),
        click.option("--description", help="Free text."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _build_policy(
    base: Policy,
    *,
    whitelists: tuple[str, ...],
    combine: str | None,
    banks: tuple[str, ...],
    use_event_log: bool | None,
    secure_boot: bool | None,
    dbx_must_contain: tuple[str, ...],
    allowed_authority: tuple[str, ...],
    ima_mode: str | None,
    ima_bank: str | None,
    signature_hashes: tuple[str, ...],
    min_rsa_bits: int | None,
    min_ecc_bits: int | None,
    description: str | None,
) -> Policy:
    """``base`` with every option that was given applied."""
    changes: dict[str, object] = {}
    if whitelists:
        changes["whitelists"] = tuple(
            WhitelistRef(*inputs.name_version(w, "--whitelist")) for w in whitelists
        )
    if combine:
        changes["combine"] = Combine(combine)
    if banks:
        changes["banks"] = tuple(dict.fromkeys(banks))
    if use_event_log is not None:
        changes["use_event_log"] = use_event_log
    if secure_boot is False and (dbx_must_contain or allowed_authority):
        raise InvalidArgumentError(
            "--no-secure-boot contradicts --dbx-must-contain / --allowed-authority",
            argument="secure_boot",
        )
    if secure_boot is False:
        changes["secure_boot"] = None
    elif secure_boot or dbx_must_contain or allowed_authority:
        current = base.secure_boot or SecureBootRequirements()
        changes["secure_boot"] = SecureBootRequirements(
            require_enabled=True,
            dbx_must_contain=tuple(
                inputs.hex_bytes(x, "--dbx-must-contain") for x in dbx_must_contain
            )
            or current.dbx_must_contain,
            allowed_authorities=tuple(
                inputs.hex_bytes(x, "--allowed-authority") for x in allowed_authority
            )
            or current.allowed_authorities,
        )
    if ima_mode or ima_bank:
        changes["ima"] = ImaRequirements(
            mode=ImaMode(ima_mode) if ima_mode else base.ima.mode, bank=ima_bank or base.ima.bank
        )
    if signature_hashes:
        changes["signature_hashes"] = tuple(dict.fromkeys(signature_hashes))
    if min_rsa_bits is not None:
        changes["min_rsa_bits"] = min_rsa_bits
    if min_ecc_bits is not None:
        changes["min_ecc_bits"] = min_ecc_bits
    if description is not None:
        changes["description"] = description
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _print_policy(p: Policy, as_json: bool) -> None:
    if as_json:
        echo_json(rd.policy_json(p))
    else:
        rd.console().print(rd.policy_table(p))


@policy.command("create", epilog=PRECEDENCE_HELP)
@click.argument("name")
@_policy_options
@cli_errors
@with_client
def policy_create(client: AttestationClient, as_json: bool, name: str, **opts: object) -> None:
    """Create policy NAME (version 1) from the options; --whitelist is required.

    Example: soapattest policy create web --whitelist rhel8 --whitelist shim@2
    --combine ALL_OF --bank sha256 --secure-boot --ima integrity
    """
    if not opts["whitelists"]:
        raise InvalidArgumentError("a policy needs at least one --whitelist", argument="whitelist")
    base = Policy(name=name, version=0, combine=Combine.ALL_OF, whitelists=())
    _print_policy(client.create_policy(_build_policy(base, **opts)), as_json)  # type: ignore[arg-type]


@policy.command("update", epilog=PRECEDENCE_HELP)
@click.argument("name")
@_policy_options
@expected_version_option
@cli_errors
@with_client
def policy_update(
    client: AttestationClient,
    as_json: bool,
    name: str,
    expected_version: int | None,
    **opts: object,
) -> None:
    """Make a new version of policy NAME: the latest version with the given options
    changed (--whitelist replaces the whole list)."""
    current = client.get_policy(name)
    new = _build_policy(current, **opts)  # type: ignore[arg-type]
    _print_policy(
        client.update_policy(new, expected_version=expected_version or current.version), as_json
    )


@policy.command("assign", epilog=PRECEDENCE_HELP)
@click.argument("policy_name", metavar="[POLICY]", required=False)
@click.option("--host", "host_name", help="Assign to this host ...")
@click.option("--pool", help="... or to this pool.")
@click.option("--clear", is_flag=True, help="Remove the assignment instead (no POLICY).")
@cli_errors
@with_client
def policy_assign(
    client: AttestationClient,
    as_json: bool,
    policy_name: str | None,
    host_name: str | None,
    pool: str | None,
    clear: bool,
) -> None:
    """Assign POLICY to a host or a pool (a host's own policy wins over its pool's);
    --clear removes the assignment."""
    if bool(host_name) == bool(pool):
        raise InvalidArgumentError("give exactly one of --host and --pool", argument="host")
    if bool(policy_name) == clear:
        raise InvalidArgumentError(
            "give POLICY, or --clear to remove the assignment", argument="policy"
        )
    client.assign_policy(None if clear else policy_name, host=host_name, pool=pool)
    target = {"host": host_name} if host_name else {"pool": pool}
    if as_json:
        echo_json({"policy": None if clear else policy_name, **target, "assigned": True})
    else:
        what = f"host {host_name}" if host_name else f"pool {pool}"
        click.echo(f"{what}: policy removed" if clear else f"{what}: policy {policy_name}")


@policy.command("list", epilog=PRECEDENCE_HELP)
@cli_errors
@with_client
def policy_list(client: AttestationClient, as_json: bool) -> None:
    """List the latest version of every policy."""
    items = client.list_policies()
    if as_json:
        echo_json([rd.policy_json(p) for p in items])
    else:
        rd.console().print(rd.policies_table(items))


@policy.command("show", epilog=PRECEDENCE_HELP)
@click.argument("ref", metavar="NAME[@VERSION]")
@cli_errors
@with_client
def policy_show(client: AttestationClient, as_json: bool, ref: str) -> None:
    """Show a policy version (default: the latest)."""
    _print_policy(client.get_policy(*inputs.name_version(ref, "policy")), as_json)


@policy.command("delete", epilog=PRECEDENCE_HELP)
@click.argument("name")
@cli_errors
@with_client
def policy_delete(client: AttestationClient, as_json: bool, name: str) -> None:
    """Delete policy NAME (refused while it is assigned)."""
    deleted = client.delete_policy(name)
    if as_json:
        echo_json({"policy": name, "deleted": deleted})
    else:
        click.echo(f"policy {name} deleted")
