"""IMA runtime-log appraisal against a verified quote (PCR 10).

1. The host served an IMA list and it parses.
2. Some prefix of the list replays exactly to the quoted PCR 10 (the list may
   have grown after the quote; later entries wait for the next quote).
3. In that prefix each recorded template digest is the hash of its template
   data (a swapped file hash with an untouched template digest is caught here;
   one with a recomputed digest fails step 2).
4. The first entry is ``boot_aggregate`` and equals the aggregate of the quoted
   firmware PCRs (binds the runtime log to this boot).
5. ALLOWLIST mode: every measured file is in an IMA whitelist with that hash;
   measurement violations fail.

Limits (see docs/threat-model.md): IMA is append-only; an entry proves a file
was measured, not that it is still unmodified, and a file measured before the
policy loaded is not in the list.
"""

from __future__ import annotations

from collections.abc import Sequence

from soapattest.errors import ImaLogError
from soapattest.model import Check, ImaMode, ImaRequirements, Whitelist
from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.ima import (
    ImaEntry,
    ImaLog,
    boot_aggregate,
    boot_aggregate_bank,
    check_boot_aggregate,
    find_template_digest_mismatches,
    parse_ima,
    replay_ima,
)
from soapattest.verify.checks import failed, hexs, info, passed
from soapattest.verify.quote import VerifiedQuote

COMPONENT = "ima"
IMA_PCR = 10
MAX_LISTED = 10  # entries named one by one in a failing check


def _attested_prefix(entries: Sequence[ImaEntry], bank: str, quoted: bytes) -> int | None:
    """Length of the shortest prefix replaying to ``quoted`` (0 for an empty prefix), or None."""
    halg = hash_by_name(bank)
    assert halg is not None
    value = bytes(halg.digest_size)
    if value == quoted:
        return 0
    for n, entry in enumerate(entries, start=1):
        value = replay_ima([entry], bank, start=value)
        if value == quoted:
            return n
    return None


def _template_checks(entries: Sequence[ImaEntry]) -> list[Check]:
    bad = find_template_digest_mismatches(entries)
    if not bad:
        return [
            passed(
                "ima.template",
                COMPONENT,
                f"all {len(entries)} template digests are the hash of their template data",
            )
        ]
    return [
        failed(
            "ima.template",
            COMPONENT,
            f"entry {e.index} ({e.path}): recorded template digest is not the hash of its "
            "template data (file hash or name was changed)",
            event_index=e.index,
            pcr=IMA_PCR,
        )
        for e in bad[:MAX_LISTED]
    ] + (
        [failed("ima.template", COMPONENT, f"... and {len(bad) - MAX_LISTED} more")]
        if len(bad) > MAX_LISTED
        else []
    )


def _boot_aggregate_check(log: ImaLog, quote: VerifiedQuote) -> Check:
    entry = log.boot_aggregate_entry
    if entry is None:
        return failed(
            "ima.boot_aggregate", COMPONENT, "the IMA list does not start with boot_aggregate"
        )
    try:
        bank = boot_aggregate_bank(entry)
    except ImaLogError as exc:
        return failed("ima.boot_aggregate", COMPONENT, exc.message)
    pcrs = quote.pcrs.get(bank, {})
    needed = range(8) if bank == "sha1" else range(10)
    missing = [p for p in needed if p not in pcrs]
    if missing:
        return failed(
            "ima.boot_aggregate",
            COMPONENT,
            f"boot_aggregate uses {bank} but the quote does not cover {bank} PCRs "
            f"{','.join(map(str, missing))}",
        )
    if not check_boot_aggregate(entry, pcrs):
        return failed(
            "ima.boot_aggregate",
            COMPONENT,
            f"boot_aggregate {hexs(entry.file_hash, 16)} is not the {bank} aggregate of the "
            f"quoted PCRs 0-{needed[-1]}: the runtime log belongs to another boot",
            expected=boot_aggregate(pcrs, bank).hex(),
            actual=hexs(entry.file_hash),
        )
    return passed(
        "ima.boot_aggregate",
        COMPONENT,
        f"boot_aggregate equals the {bank} aggregate of the quoted PCRs 0-{needed[-1]}",
    )


def _allowlist_checks(entries: Sequence[ImaEntry], whitelists: Sequence[Whitelist]) -> list[Check]:
    allowed: dict[str, set[tuple[str, bytes]]] = {}
    for wl in whitelists:
        for path, hashes in wl.ima_hashes().items():
            allowed.setdefault(path, set()).update(hashes)
    if not allowed:
        return [failed("ima.allowlist", COMPONENT, "no IMA whitelist entries: nothing is allowed")]
    problems: list[Check] = []
    for e in entries[1:]:
        if e.is_violation:
            problems.append(
                failed(
                    "ima.allowlist",
                    COMPONENT,
                    f"entry {e.index} ({e.path}) is a measurement violation",
                    event_index=e.index,
                )
            )
            continue
        key = (e.file_hash_alg or "sha1", e.file_hash or b"")
        if key not in allowed.get(e.path or "", set()):
            problems.append(
                failed(
                    "ima.allowlist",
                    COMPONENT,
                    f"entry {e.index}: {e.path} {key[0]}:{hexs(key[1], 16)} is not in the "
                    "IMA whitelist",
                    event_index=e.index,
                    actual=f"{key[0]}:{key[1].hex()}",
                )
            )
    if not problems:
        return [
            passed(
                "ima.allowlist", COMPONENT, f"all {len(entries) - 1} measured files are allowed"
            )
        ]
    if len(problems) > MAX_LISTED:
        extra = len(problems) - MAX_LISTED
        problems = problems[:MAX_LISTED]
        problems.append(failed("ima.allowlist", COMPONENT, f"... and {extra} more"))
    return problems


def appraise_ima(
    ima_bytes: bytes | None,
    quote: VerifiedQuote,
    req: ImaRequirements,
    whitelists: Sequence[Whitelist],
) -> list[Check]:
    """Appraise the IMA list against the verified PCR 10 of ``req.bank``."""
    if req.mode is ImaMode.OFF:
        return []
    # 1. Present and well-formed.
    if ima_bytes is None:
        return [failed("ima.parse", COMPONENT, "the policy needs IMA but the host served no list")]
    try:
        ima = parse_ima(ima_bytes)
    except ImaLogError as exc:
        return [failed("ima.parse", COMPONENT, f"IMA list rejected: {exc.message}")]
    checks = [passed("ima.parse", COMPONENT, f"{ima.kind} IMA list, {len(ima.entries)} entries")]
    # 2. Replay to the quoted PCR 10.
    quoted = quote.value(req.bank, IMA_PCR)
    if quoted is None:
        checks.append(failed("ima.replay", COMPONENT, f"PCR 10 ({req.bank}) was not quoted"))
        return checks
    n = _attested_prefix(ima.entries, req.bank, quoted)
    if n is None:
        checks.append(
            failed(
                "ima.replay",
                COMPONENT,
                f"no prefix of the {len(ima.entries)}-entry IMA list replays to the quoted "
                f"PCR 10 ({req.bank}) {hexs(quoted, 16)}",
                pcr=IMA_PCR,
                bank=req.bank,
                expected=quoted.hex(),
            )
        )
        return checks
    attested = ima.entries[:n]
    checks.append(
        passed(
            "ima.replay",
            COMPONENT,
            f"the first {n} IMA entries replay to the quoted PCR 10 ({req.bank})",
            pcr=IMA_PCR,
            bank=req.bank,
        )
    )
    if n < len(ima.entries):
        checks.append(
            info(
                "ima.pending",
                COMPONENT,
                f"{len(ima.entries) - n} entries were measured after the quote",
            )
        )
    # 3. Template digests.
    checks.extend(_template_checks(attested))
    # 4. boot_aggregate.
    checks.append(_boot_aggregate_check(ima, quote))
    # 5. Allowlist.
    violations = sum(1 for e in attested if e.is_violation)
    if req.mode is ImaMode.ALLOWLIST:
        checks.extend(_allowlist_checks(attested, whitelists))
    elif violations:
        checks.append(
            info("ima.violations", COMPONENT, f"{violations} measurement violations recorded")
        )
    return checks
