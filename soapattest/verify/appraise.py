"""From evidence and policy to a trust report: the one entry point of the engine.

1. Quote: every step of :mod:`soapattest.verify.quote`; without a verified
   quote nothing else is trusted and the report is UNTRUSTED.
2. Event log (when the policy uses it): :mod:`soapattest.verify.eventlog`.
3. Whitelists, combined ALL_OF or ANY_OF: :mod:`soapattest.verify.whitelist`.
4. Secure Boot requirements on PCR 7: :mod:`soapattest.verify.secureboot`.
5. IMA (integrity or allowlist): :mod:`soapattest.verify.ima`.

The verdict is :func:`soapattest.model.overall_status` of every check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from soapattest.errors import PolicyError
from soapattest.model import (
    Check,
    CheckStatus,
    Combine,
    ImaMode,
    Policy,
    QuoteState,
    TrustReport,
    Whitelist,
    overall_status,
)
from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.eventlog import DEFAULT_LIMITS, EventLogLimits
from soapattest.tpm.pcr import PcrSelection
from soapattest.tpm.public import TpmPublic
from soapattest.verify.checks import errored, fold_passes, info, passed, registered
from soapattest.verify.eventlog import LogAppraisal, appraise_event_log
from soapattest.verify.identity import KeyRules
from soapattest.verify.ima import appraise_ima
from soapattest.verify.quote import (
    QuoteEvidence,
    QuoteExpectations,
    VerifiedQuote,
    evaluate_quote,
)
from soapattest.verify.secureboot import evaluate_secure_boot
from soapattest.verify.whitelist import evaluate_whitelist, required_pcrs, whitelist_index

SECURE_BOOT_PCR = 7
IMA_PCR = 10
BOOT_AGGREGATE_PCRS = {"sha1": range(8)}  # other banks: PCR 0-9 (kernel >= 5.8)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything a host returned for one attestation (untrusted)."""

    quote: QuoteEvidence
    event_log: bytes | None = None
    ima_log: bytes | None = None


@dataclass(frozen=True, slots=True)
class AppraisalInput:
    """What the server knows: the host's registered AK and state, the policy, the time."""

    host: str
    ak: TpmPublic
    nonce: bytes
    policy: Policy
    whitelists: tuple[Whitelist, ...]  # the resolved versions, in the policy's order
    now: datetime
    previous: QuoteState | None = None
    qualified_signer: bytes = b""
    log_limits: EventLogLimits = DEFAULT_LIMITS


@dataclass(frozen=True, slots=True)
class Appraisal:
    """The report, and the verified quote when there was one (to record its clock state)."""

    report: TrustReport
    quote: VerifiedQuote | None


def validate_policy(policy: Policy, whitelists: Sequence[Whitelist]) -> None:
    """Refuse a policy that could never mean anything (raises :class:`PolicyError`).

    No whitelist, no bank, an unknown bank, or a whitelist with no entry in the
    policy's banks would make an accept-all or a never-decidable policy.
    """
    if not policy.whitelists or not whitelists:
        raise PolicyError(f"policy '{policy.name}' names no whitelist")
    if not policy.banks:
        raise PolicyError(f"policy '{policy.name}' names no PCR bank")
    for bank in policy.banks:
        if hash_by_name(bank) is None:
            raise PolicyError(f"policy '{policy.name}': unknown PCR bank '{bank}'")
    if len(set(policy.banks)) != len(policy.banks):
        raise PolicyError(f"policy '{policy.name}' lists a bank twice")
    for wl in whitelists:
        index = whitelist_index(wl)
        if not any(index.bank(bank).pcrs for bank in policy.banks):
            raise PolicyError(
                f"whitelist '{wl.name}' v{wl.version} has no entry in the policy's banks "
                f"({', '.join(policy.banks)})"
            )
    if policy.ima.mode is not ImaMode.OFF and hash_by_name(policy.ima.bank) is None:
        raise PolicyError(f"policy '{policy.name}': unknown IMA bank '{policy.ima.bank}'")


def required_selection(policy: Policy, whitelists: Sequence[Whitelist]) -> PcrSelection:
    """The PCR selection a quote must cover for ``policy`` (what the server asks for)."""
    wanted: dict[str, set[int]] = {}
    for bank in policy.banks:
        wanted[bank] = required_pcrs(whitelists, bank)
    if policy.secure_boot is not None:
        wanted.setdefault(policy.banks[0], set()).add(SECURE_BOOT_PCR)
    if policy.ima.mode is not ImaMode.OFF:
        bank = policy.ima.bank
        wanted.setdefault(bank, set()).add(IMA_PCR)
        wanted[bank] |= set(BOOT_AGGREGATE_PCRS.get(bank, range(10)))
    return PcrSelection.from_mapping({b: sorted(p) for b, p in wanted.items() if p})


def _combine(policy: Policy, per_whitelist: list[tuple[Whitelist, list[Check]]]) -> list[Check]:
    if policy.combine is Combine.ALL_OF:
        return [c for _, checks in per_whitelist for c in checks]
    satisfied = [
        wl for wl, checks in per_whitelist if all(c.status is not CheckStatus.FAIL for c in checks)
    ]
    if not satisfied:
        out = [c for _, checks in per_whitelist for c in checks]
        names = ", ".join(f"'{wl.name}'" for wl, _ in per_whitelist)
        out.append(
            Check(
                id="policy.any_of",
                component="policy",
                status=CheckStatus.FAIL,
                reason=f"no whitelist of ANY_OF policy '{policy.name}' is satisfied ({names})",
            )
        )
        return out
    chosen = satisfied[0]
    out = []
    for wl, checks in per_whitelist:
        if wl is chosen:
            out.extend(checks)
        else:
            out.extend(
                replace(
                    c,
                    status=CheckStatus.INFO,
                    reason=f"{c.reason} (not required: ANY_OF satisfied by '{chosen.name}')",
                )
                for c in checks
            )
    out.append(
        passed(
            "policy.any_of",
            "policy",
            f"ANY_OF policy '{policy.name}' is satisfied by whitelist '{chosen.name}' "
            f"v{chosen.version}",
        )
    )
    return out


@dataclass(frozen=True, slots=True)
class _PolicyFacts:
    """What a validated policy and its whitelists mean for every appraisal under them."""

    rules: KeyRules
    required: PcrSelection
    note: Check
    versions: tuple[tuple[str, int], ...]


# By the identity of the policy and whitelist objects (immutable; the cache keeps
# them alive, so their id() cannot be reused while the entry exists).
_POLICIES: dict[tuple[int, ...], tuple[Policy, tuple[Whitelist, ...], _PolicyFacts]] = registered(
    {}
)
_POLICIES_MAX = 256
_POLICIES_MAX_ENTRIES = 200_000  # whitelist entries kept alive by the memo
_policy_entries = 0


def _policy_facts(policy: Policy, whitelists: Sequence[Whitelist]) -> _PolicyFacts:
    """:func:`validate_policy` (raises :class:`PolicyError`), then the facts; memoised."""
    key = (id(policy), *map(id, whitelists))
    hit = _POLICIES.get(key)
    if (
        hit is not None
        and hit[0] is policy
        and len(hit[1]) == len(whitelists)
        and all(a is b for a, b in zip(hit[1], whitelists, strict=True))
    ):
        return hit[2]
    validate_policy(policy, whitelists)
    facts = _PolicyFacts(
        rules=KeyRules(
            min_rsa_bits=policy.min_rsa_bits,
            min_ecc_bits=policy.min_ecc_bits,
            signature_hashes=policy.signature_hashes,
        ),
        required=required_selection(policy, whitelists),
        note=info(
            "policy",
            "policy",
            f"policy '{policy.name}' v{policy.version}: {policy.combine.value} of "
            + ", ".join(f"'{w.name}' v{w.version}" for w in whitelists)
            + f" in {', '.join(policy.banks)}",
        ),
        versions=tuple((w.name, w.version) for w in whitelists),
    )
    global _policy_entries
    size = sum(len(w.entries) for w in whitelists)
    if len(_POLICIES) >= _POLICIES_MAX or _policy_entries + size > _POLICIES_MAX_ENTRIES:
        _POLICIES.clear()
        _policy_entries = 0
    _POLICIES[key] = (policy, tuple(whitelists), facts)
    _policy_entries += size
    return facts


def appraise(evidence: Evidence, inp: AppraisalInput) -> Appraisal:
    """Evaluate ``evidence`` for ``inp.host`` under ``inp.policy``; never raises for bad evidence.

    Raises :class:`PolicyError` only when the policy itself is unusable (that
    is a configuration error, not a property of the host).
    """
    policy = inp.policy
    facts = _policy_facts(policy, inp.whitelists)
    expect = QuoteExpectations(
        nonce=inp.nonce,
        required=facts.required,
        key_rules=facts.rules,
        previous=inp.previous,
        qualified_signer=inp.qualified_signer,
    )
    checks: list[Check] = [facts.note]
    # 1. Quote.
    result = evaluate_quote(evidence.quote, inp.ak, expect)
    checks.extend(result.checks)
    quote = result.verified
    log_digest = hashlib.sha256(evidence.event_log).digest() if evidence.event_log else None
    if quote is not None:
        # 2. Event log.
        log: LogAppraisal | None = None
        needs_log = policy.use_event_log or policy.secure_boot is not None
        if needs_log:
            if evidence.event_log is None:
                checks.append(
                    errored("eventlog.parse", "eventlog", "the host served no event log")
                )
            else:
                log = appraise_event_log(
                    evidence.event_log, quote.pcrs, policy.banks, limits=inp.log_limits
                )
                checks.extend(log.checks)
        # 3. Whitelists.
        per_wl = [
            (wl, evaluate_whitelist(wl, policy.banks, quote, log)) for wl in inp.whitelists
        ]
        checks.extend(_combine(policy, per_wl))
        # 4. Secure Boot.
        if policy.secure_boot is not None:
            checks.extend(evaluate_secure_boot(log, policy.banks[0], policy.secure_boot))
        # 5. IMA.
        if policy.ima.mode is not ImaMode.OFF:
            checks.extend(appraise_ima(evidence.ima_log, quote, policy.ima, inp.whitelists))
    state = result.attest.clock_info if result.attest is not None else None
    report = TrustReport(
        host=inp.host,
        status=overall_status(checks),
        checks=tuple(fold_passes(checks)),
        created_at=inp.now,
        policy=policy.name,
        policy_version=policy.version,
        whitelists=facts.versions,
        pcrs=quote.pcrs if quote is not None else {},
        reset_count=state.reset_count if state else None,
        restart_count=state.restart_count if state else None,
        clock=state.clock if state else None,
        firmware_version=result.attest.firmware_version if result.attest else None,
        reboot_detected=quote.reboot if quote is not None else False,
        event_log_sha256=log_digest,
    )
    return Appraisal(report, quote)


def unknown_report(
    host: str,
    check_id: str,
    reason: str,
    now: datetime,
    *,
    policy: Policy | None = None,
) -> TrustReport:
    """A report for a host that could not be evaluated (agent down, TPM error): UNKNOWN."""
    checks = (errored(check_id, "agent", reason),)
    return TrustReport(
        host=host,
        status=overall_status(checks),
        checks=checks,
        created_at=now,
        policy=policy.name if policy else None,
        policy_version=policy.version if policy else None,
    )
