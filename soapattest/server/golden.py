"""Whitelist and policy use cases, including capturing golden values from a known-good host.

Every change makes a new version (the store never overwrites one) and is
audited. :func:`import_whitelist_from_host` only captures what a verified
quote vouches for: PCR values from a quote with a fresh nonce, event digests
only from PCRs whose log replays exactly to that quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from soapattest.errors import InvalidArgumentError, PolicyError
from soapattest.model import EntryKind, Policy, Whitelist, WhitelistEntry
from soapattest.server import validate
from soapattest.server.audit import audited
from soapattest.server.context import ServerContext
from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.eventlog import EventLogLimits, decode_event
from soapattest.tpm.pcr import PcrSelection
from soapattest.tpm.public import parse_public
from soapattest.verify.appraise import validate_policy
from soapattest.verify.eventlog import appraise_event_log
from soapattest.verify.quote import QuoteEvidence, QuoteExpectations, verify_quote

MAX_ENTRIES = 100_000
NONCE_BYTES = 32


class ImportMode(StrEnum):
    """What an import does when the whitelist exists."""

    CREATE = "CREATE"  # refuse if it exists
    NEW_VERSION = "NEW_VERSION"  # replace the entries in a new version
    MERGE = "MERGE"  # add the captured entries in a new version


def check_entries(entries: Sequence[WhitelistEntry]) -> tuple[WhitelistEntry, ...]:
    """Validate entries from a caller: banks, PCR range, digest sizes, paths, bounds."""
    if not entries:
        raise InvalidArgumentError("no whitelist entry given", argument="entries")
    if len(entries) > MAX_ENTRIES:
        raise InvalidArgumentError(f"at most {MAX_ENTRIES} entries", argument="entries")
    for e in entries:
        halg = hash_by_name(e.bank)
        if halg is None:
            raise InvalidArgumentError(f"unknown bank '{e.bank}'", argument="entries")
        if not 0 <= e.pcr <= 23:
            raise InvalidArgumentError(f"PCR {e.pcr} outside 0..23", argument="entries")
        if len(e.digest) != halg.digest_size:
            raise InvalidArgumentError(
                f"a {e.bank} digest has {halg.digest_size} bytes, not {len(e.digest)}",
                argument="entries",
            )
        if e.kind is EntryKind.IMA:
            if e.pcr != 10 or not e.path:
                raise InvalidArgumentError("IMA entries need PCR 10 and a path", argument="entries")
            validate.text(e.path, "path", 4096)
        elif e.path:
            raise InvalidArgumentError("only IMA entries carry a path", argument="entries")
        validate.text(e.label, "label", 256)
    return tuple(entries)


def create_whitelist(
    ctx: ServerContext,
    actor: str,
    name: str,
    entries: Sequence[WhitelistEntry],
    description: str = "",
) -> Whitelist:
    """Create version 1 of a whitelist."""
    validate.name(name, "whitelist")
    checked = check_entries(entries)
    desc = validate.text(description, "description")
    with audited(ctx, actor, "whitelist.create", "whitelist", name) as audit:
        with ctx.store.transaction() as tx:
            wl = tx.whitelists.create(name, checked, description=desc, actor=actor, now=ctx.clock())
            audit.details.update(version=wl.version, entries=len(wl.entries))
            audit.record(tx)
        return wl


def change_entries(
    ctx: ServerContext,
    actor: str,
    name: str,
    entries: Sequence[WhitelistEntry],
    *,
    add: bool,
    expected_version: int | None = None,
) -> Whitelist:
    """Add or remove entries: a new version (optimistic concurrency with ``expected_version``)."""
    validate.name(name, "whitelist")
    checked = check_entries(entries)
    action = "whitelist.add_entries" if add else "whitelist.remove_entries"
    with audited(ctx, actor, action, "whitelist", name) as audit:
        with ctx.store.transaction() as tx:
            repo = tx.whitelists
            change = repo.add_entries if add else repo.remove_entries
            wl = change(
                name, checked, actor=actor, now=ctx.clock(), expected_version=expected_version
            )
            audit.details.update(version=wl.version, changed=len(checked))
            audit.record(tx)
        return wl


def delete_whitelist(ctx: ServerContext, actor: str, name: str) -> None:
    """Delete a whitelist (refused while a policy uses it); its versions stay in history."""
    validate.name(name, "whitelist")
    with audited(ctx, actor, "whitelist.delete", "whitelist", name) as audit:
        with ctx.store.transaction() as tx:
            tx.whitelists.delete(name, now=ctx.clock())
            audit.record(tx)


def import_whitelist_from_host(
    ctx: ServerContext,
    actor: str,
    *,
    host: str,
    name: str,
    pcrs: Sequence[int],
    banks: Sequence[str] = ("sha256",),
    kinds: Sequence[EntryKind] = (EntryKind.PCR, EntryKind.EVENT),
    mode: ImportMode = ImportMode.CREATE,
    description: str = "",
) -> Whitelist:
    """Capture golden values from ``host`` into whitelist ``name``.

    Refuses (nothing stored) when the quote does not verify, or when a PCR
    asked for events does not replay: golden values come only from evidence
    the host's TPM signed.
    """
    validate.name(host, "host")
    validate.name(name, "whitelist")
    desc = validate.text(description, "description")
    wanted = sorted(set(pcrs))
    if not wanted or any(not 0 <= p <= 23 for p in wanted):
        raise InvalidArgumentError("pcrs must name PCRs within 0..23", argument="pcrs")
    if not banks or any(hash_by_name(b) is None for b in banks) or len(set(banks)) != len(banks):
        raise InvalidArgumentError("banks must be distinct known PCR banks", argument="banks")
    kinds = tuple(dict.fromkeys(kinds))
    if not kinds or EntryKind.IMA in kinds:
        raise InvalidArgumentError("kinds must be pcr and/or event", argument="kinds")
    with audited(ctx, actor, "whitelist.import", "whitelist", name, {"host": host}) as audit:
        with ctx.store.transaction(readonly=True) as tx:
            source = tx.hosts.get(host)
            exists = tx.whitelists.versions(name) if mode is not ImportMode.CREATE else []
        if source.identity is None:
            raise PolicyError(f"host '{host}' has no activated identity")
        selection = PcrSelection.from_mapping(dict.fromkeys(banks, wanted))
        nonce = ctx.random_bytes(NONCE_BYTES)
        pin = source.identity.agent_tls_pin or None
        q = ctx.agents.quote(source.agent_url, nonce, selection, pin=pin)
        verified = verify_quote(
            QuoteEvidence(q.attest, q.signature, q.raw_pcrs),
            parse_public(source.identity.ak_public),
            QuoteExpectations(
                nonce=nonce,
                required=selection,
                qualified_signer=source.identity.qualified_signer,
            ),
        )
        entries: set[WhitelistEntry] = set()
        if EntryKind.PCR in kinds:
            for bank, pcr in selection.pcrs():
                value = verified.pcrs[bank][pcr]
                entries.add(WhitelistEntry(EntryKind.PCR, bank, pcr, value, label=f"from {host}"))
        if EntryKind.EVENT in kinds:
            raw_log = ctx.agents.event_log(source.agent_url, pin=pin)
            appraisal = appraise_event_log(
                raw_log,
                verified.pcrs,
                list(banks),
                limits=EventLogLimits(max_log_bytes=ctx.config.event_log_max_bytes),
            )
            for bank in banks:
                for pcr in wanted:
                    events = appraisal.trusted_events(bank, pcr)
                    if events is None:
                        raise PolicyError(
                            f"host '{host}': PCR {pcr} ({bank}) of its event log does not replay "
                            "to its quote; refusing to import events from it"
                        )
                    for ev in events:
                        summary = decode_event(ev).summary
                        label = f"{ev.type_name}: {summary}"[:250]
                        entries.add(
                            WhitelistEntry(
                                EntryKind.EVENT, bank, pcr, ev.digests[bank], label=label
                            )
                        )
        captured = tuple(sorted(entries))
        if not captured:
            raise PolicyError(f"nothing to import from host '{host}' for PCRs {wanted}")
        now = ctx.clock()
        with ctx.store.transaction() as tx:
            if mode is ImportMode.CREATE or not exists:
                wl = tx.whitelists.create(
                    name, captured, description=desc, actor=actor, now=now, source_host=host
                )
            elif mode is ImportMode.MERGE:
                wl = tx.whitelists.add_entries(name, captured, actor=actor, now=now)
            else:
                current = tx.whitelists.get(name)
                stale = [e for e in current.entries if e.key() not in {c.key() for c in captured}]
                if stale:
                    tx.whitelists.remove_entries(name, stale, actor=actor, now=now)
                wl = tx.whitelists.add_entries(name, captured, actor=actor, now=now)
            audit.details.update(version=wl.version, entries=len(captured), mode=mode.value)
            audit.record(tx)
        return wl


def create_policy(
    ctx: ServerContext,
    actor: str,
    policy: Policy,
    *,
    update: bool = False,
    expected_version: int | None = None,
) -> Policy:
    """Create (or, with ``update``, version) a policy after checking it is meaningful."""
    validate.name(policy.name, "policy")
    validate.text(policy.description, "description")
    for ref in policy.whitelists:
        validate.name(ref.name, "whitelist")
    action = "policy.update" if update else "policy.create"
    with audited(ctx, actor, action, "policy", policy.name) as audit:
        with ctx.store.transaction() as tx:
            resolved = tuple(tx.whitelists.get(r.name, r.version) for r in policy.whitelists)
            validate_policy(policy, resolved)
            if update:
                stored = tx.policies.update(
                    policy, actor=actor, now=ctx.clock(), expected_version=expected_version
                )
            else:
                stored = tx.policies.create(policy, actor=actor, now=ctx.clock())
            audit.details.update(
                version=stored.version, whitelists=[str(r) for r in policy.whitelists]
            )
            audit.record(tx)
        return stored


def assign_policy(
    ctx: ServerContext, actor: str, policy: str | None, *, host: str = "", pool: str = ""
) -> None:
    """Assign ``policy`` (or none) to exactly one of a host or a pool."""
    if bool(host) == bool(pool):
        raise InvalidArgumentError("give exactly one of host or pool", argument="target")
    if policy:
        validate.name(policy, "policy")
    target_type, target = (
        ("host", validate.name(host, "host")) if host else ("pool", validate.name(pool, "pool"))
    )
    with audited(ctx, actor, "policy.assign", target_type, target, {"policy": policy}) as audit:
        with ctx.store.transaction() as tx:
            if policy:
                tx.policies.get(policy)
            if host:
                tx.hosts.update(host, policy=policy or "", now=ctx.clock())
            else:
                tx.pools.assign_policy(pool, policy or None, ctx.clock())
            audit.record(tx)


def delete_policy(ctx: ServerContext, actor: str, name: str) -> None:
    """Delete a policy (refused while assigned)."""
    validate.name(name, "policy")
    with audited(ctx, actor, "policy.delete", "policy", name) as audit:
        with ctx.store.transaction() as tx:
            tx.policies.delete(name, ctx.clock())
            audit.record(tx)
