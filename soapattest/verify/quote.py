"""Quote verification: is this TPMS_ATTEST a fresh quote from the registered AK?

Steps follow TPM 2.0 Part 3, TPM2_Quote (and Part 2, TPMS_ATTEST):

1. TPMS_ATTEST and TPMT_SIGNATURE parse strictly (no trailing bytes).
2. ``magic`` is TPM_GENERATED_VALUE (only the TPM writes it into signed data).
3. ``type`` is TPM_ST_ATTEST_QUOTE (not CERTIFY, CREATION, ... carrying our nonce).
4. The signature scheme and hash are those fixed by the AK's template.
5. The signature verifies over the TPMS_ATTEST bytes with the AK.
6. ``extraData`` equals the nonce issued for this quote (constant-time compare).
7. ``qualifiedSigner`` names the registered AK.
8. The quoted selection equals the reported PCRs (both directions, per bank)
   and covers every PCR the policy needs.
9. ``pcrDigest`` equals H_sig(concatenation of reported values in selection order).
10. resetCount / restartCount / clock did not go backwards since the previous
    verified quote; a reboot or firmware change is reported.

:func:`evaluate_quote` runs every step that can run and returns each result;
:func:`verify_quote` raises the first failure. Only a fully verified quote
yields :class:`VerifiedQuote`, the one type that carries trusted PCR values.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from soapattest.errors import (
    BadMagicError,
    ClockRegressionError,
    NonceMismatchError,
    PcrDigestMismatchError,
    PcrSelectionMismatchError,
    QualifiedSignerError,
    QuoteFormatError,
    QuoteVerificationError,
    SignatureSchemeError,
    SoapAttestError,
    TpmFormatError,
    WrongAttestTypeError,
)
from soapattest.model import Check, QuoteState
from soapattest.tpm.attest import Attest, parse_attest
from soapattest.tpm.constants import TPM_GENERATED_VALUE, TpmSt, hash_by_name
from soapattest.tpm.pcr import PcrSelection, PcrValues, pcr_digest
from soapattest.tpm.public import TpmPublic
from soapattest.tpm.signature import Signature, parse_signature, verify_signature
from soapattest.verify.checks import failed, hexs, info, passed, registered
from soapattest.verify.identity import AkScheme, KeyRules, check_ak

COMPONENT = "quote"


@dataclass(frozen=True, slots=True)
class QuoteEvidence:
    """What a host's agent returned for one quote request (all untrusted)."""

    attest: bytes
    signature: bytes
    raw_pcrs: PcrValues


@dataclass(frozen=True, slots=True)
class QuoteExpectations:
    """What the verifier requires of the quote.

    ``nonce``: the nonce this server issued (never empty).
    ``required``: PCRs the policy needs; the quote must cover them.
    ``previous``: clock state of the host's last verified quote, if any.
    ``qualified_signer``: the AK's qualified name recorded at registration
    (empty: only its name algorithm is checked, and the value is then recorded).
    """

    nonce: bytes
    required: PcrSelection | None = None
    key_rules: KeyRules = field(default_factory=KeyRules)
    previous: QuoteState | None = None
    qualified_signer: bytes = b""


@dataclass(frozen=True, slots=True)
class VerifiedQuote:
    """A quote whose every step passed. ``pcrs`` are trusted values."""

    attest: Attest
    selection: PcrSelection
    pcrs: PcrValues
    state: QuoteState
    reboot: bool

    def value(self, bank: str, pcr: int) -> bytes | None:
        """The verified value of one PCR, or ``None`` when it was not quoted."""
        return self.pcrs.get(bank, {}).get(pcr)


@dataclass(frozen=True, slots=True)
class QuoteResult:
    """Every step's :class:`Check`, the first error, and the verified quote when all passed."""

    checks: tuple[Check, ...]
    verified: VerifiedQuote | None
    error: QuoteVerificationError | None
    attest: Attest | None


_ATTEST_QUOTE = int(TpmSt.ATTEST_QUOTE)
# Reasons of passing steps (shared by the detailed path and the fast path).
_OK_FORMAT = "TPMS_ATTEST and TPMT_SIGNATURE parse"
_OK_MAGIC = "magic is TPM_GENERATED_VALUE"
_OK_TYPE = "attestation type is ATTEST_QUOTE"
_OK_SIGNATURE = "signature verifies with the registered AK"
_OK_NONCE = "extraData equals the issued nonce"
_OK_SIGNER = "qualifiedSigner matches the registered AK"
_OK_CLOCK = "resetCount, restartCount and clock did not go backwards"
_OK_FIRST_CLOCK = "first verified quote of this host: clock state recorded"


def _scheme_reason(scheme: AkScheme) -> str:
    return f"signature scheme 0x{scheme.sig_alg:04x}/{scheme.hash_name} is the AK's"


def _digest_reason(hname: str) -> str:
    return f"pcrDigest equals the {hname} of the reported PCR values"


def _label(bank: str, pcr: int) -> str:
    return f"{bank}:{pcr}"


def _check_magic(attest: Attest) -> str:
    # 2. Only the TPM puts TPM_GENERATED_VALUE at the start of data it signs.
    if attest.magic != TPM_GENERATED_VALUE:
        raise BadMagicError(
            f"magic is 0x{attest.magic:08x}, not TPM_GENERATED_VALUE 0x{TPM_GENERATED_VALUE:08x}"
        )
    return _OK_MAGIC


def _check_type(attest: Attest) -> str:
    # 3. A quote, not another attestation structure that happens to carry our nonce.
    if attest.type != TpmSt.ATTEST_QUOTE or attest.quote is None:
        try:
            name = TpmSt(attest.type).name
        except ValueError:
            name = f"0x{attest.type:04x}"
        raise WrongAttestTypeError(f"attestation type is {name}, not ATTEST_QUOTE")
    return _OK_TYPE


def _check_nonce(attest: Attest, nonce: bytes) -> str:
    # 6. Freshness: one encoding (raw bytes), constant-time comparison.
    if not nonce:
        raise NonceMismatchError("no nonce was issued for this quote; refusing an unbound quote")
    if not hmac.compare_digest(attest.extra_data, nonce):
        raise NonceMismatchError(
            "extraData does not equal the nonce issued for this quote "
            f"(got {len(attest.extra_data)} bytes {hexs(attest.extra_data, 16)})"
        )
    return _OK_NONCE


def _check_qualified_signer(attest: Attest, ak: TpmPublic, recorded: bytes) -> str:
    # 7. qualifiedSigner is TPM2B_NAME: nameAlg || H(parent QN || name). It cannot
    # be recomputed without the AK's ancestry, so it is pinned at registration.
    qs = attest.qualified_signer
    if len(qs) < 2 or int.from_bytes(qs[:2], "big") != ak.name_alg:
        raise QualifiedSignerError(
            f"qualifiedSigner {hexs(qs, 16)} does not use the AK's name algorithm "
            f"0x{ak.name_alg:04x}"
        )
    if recorded and not hmac.compare_digest(qs, recorded):
        raise QualifiedSignerError(
            f"qualifiedSigner {hexs(qs, 16)} differs from the one recorded at registration "
            f"{hexs(recorded, 16)}"
        )
    return _OK_SIGNER


@dataclass(frozen=True, slots=True)
class _SelectionFacts:
    """What every quote with one selection needs, computed once per selection."""

    pairs: tuple[tuple[str, int], ...]  # (bank, pcr) in hashing order
    banks: tuple[tuple[str, frozenset[int], int], ...]  # banks with PCRs: indices, digest size
    names: frozenset[str]
    quoted: frozenset[tuple[str, int]]
    description: str
    usable: bool  # every bank is a known hash (else: the detailed path explains)


_SELECTIONS: dict[PcrSelection, _SelectionFacts] = registered({})
_REQUIRED: dict[PcrSelection, frozenset[tuple[str, int]]] = registered({})
_MEMO_MAX = 256
_PCR_HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def _memo_put(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value


def _selection_facts(selection: PcrSelection) -> _SelectionFacts:
    facts = _SELECTIONS.get(selection)
    if facts is None:
        pairs = tuple(selection.pcrs())
        banks = []
        usable = True
        for bank, indices in selection.banks:
            halg = hash_by_name(bank)
            if halg is None:
                usable = False
            elif indices:
                banks.append((bank, frozenset(indices), halg.digest_size))
        description = ", ".join(f"{b}[{','.join(map(str, ps))}]" for b, ps in selection.banks)
        facts = _SelectionFacts(
            pairs=pairs,
            banks=tuple(banks),
            names=frozenset(b for b, _, _ in banks),
            quoted=frozenset(pairs),
            description=f"quoted selection equals the reported PCRs: {description}",
            usable=usable and bool(pairs),
        )
        _memo_put(_SELECTIONS, selection, facts)
    return facts


def _required_pairs(required: PcrSelection) -> frozenset[tuple[str, int]]:
    needed = _REQUIRED.get(required)
    if needed is None:
        needed = frozenset(required.pcrs())
        _memo_put(_REQUIRED, required, needed)
    return needed


def _selection_matches(
    facts: _SelectionFacts, raw_pcrs: PcrValues, required: PcrSelection | None
) -> bool:
    """The common case of step 8, decided quickly; False sends it to the detailed check."""
    if not facts.usable or raw_pcrs.keys() != facts.names:
        return False
    for bank, indices, size in facts.banks:
        values = raw_pcrs[bank]
        if values.keys() != indices:
            return False
        for value in values.values():
            if len(value) != size:
                return False
    return required is None or _required_pairs(required) <= facts.quoted


def _check_selection(
    selection: PcrSelection, raw_pcrs: PcrValues, required: PcrSelection | None
) -> str:
    # 8. Both directions, per bank: quoted == reported; required is a subset.
    facts = _selection_facts(selection)
    if _selection_matches(facts, raw_pcrs, required):
        return facts.description
    quoted = set(selection.pcrs())
    reported = {(bank, pcr) for bank, values in raw_pcrs.items() for pcr in values}
    if not quoted:
        raise PcrSelectionMismatchError("the quote selects no PCR")
    missing = tuple(sorted(_label(b, p) for b, p in quoted - reported))
    extra = tuple(sorted(_label(b, p) for b, p in reported - quoted))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"quoted but not reported: {', '.join(missing)}")
        if extra:
            parts.append(f"reported but not quoted: {', '.join(extra)}")
        raise PcrSelectionMismatchError("; ".join(parts), missing=missing, extra=extra)
    for bank, pcr in quoted:
        halg = hash_by_name(bank)
        value = raw_pcrs[bank][pcr]
        if halg is None or len(value) != halg.digest_size:
            raise PcrSelectionMismatchError(
                f"PCR {_label(bank, pcr)} value has {len(value)} bytes, not a {bank} digest"
            )
    if required is not None:
        needed = set(required.pcrs())
        uncovered = tuple(sorted(_label(b, p) for b, p in needed - quoted))
        if uncovered:
            raise PcrSelectionMismatchError(
                f"the quote does not cover PCRs the policy needs: {', '.join(uncovered)}",
                missing=uncovered,
            )
    return facts.description


def _check_digest(attest: Attest, selection: PcrSelection, raw_pcrs: PcrValues, hname: str) -> str:
    # 9. pcrDigest is computed with the signing scheme's hash (Part 3, TPM2_Quote).
    # Only run after step 8 passed: every selected value is reported, with its size.
    assert attest.quote is not None
    new = _PCR_HASHES.get(hname)
    if new is not None:
        pairs = _selection_facts(selection).pairs
        digest = new(b"".join([raw_pcrs[bank][pcr] for bank, pcr in pairs])).digest()
    else:
        try:
            digest = pcr_digest(hname, selection, raw_pcrs)
        except TpmFormatError as exc:
            raise PcrDigestMismatchError(
                f"cannot recompute the PCR digest: {exc.message}"
            ) from exc
    if not hmac.compare_digest(digest, attest.quote.pcr_digest):
        raise PcrDigestMismatchError(
            f"pcrDigest {hexs(attest.quote.pcr_digest, 16)} is not the {hname} of the reported "
            f"PCR values ({hexs(digest, 16)})"
        )
    return _digest_reason(hname)


def _clock_state(attest: Attest) -> QuoteState:
    ci = attest.clock_info
    return QuoteState(
        clock=ci.clock,
        reset_count=ci.reset_count,
        restart_count=ci.restart_count,
        firmware_version=attest.firmware_version,
        safe=ci.safe,
    )


def _check_clock(state: QuoteState, previous: QuoteState | None) -> tuple[str, list[str]]:
    # 10. Counters never go backwards; a reboot is visible, never hidden.
    notes: list[str] = []
    if previous is None:
        return _OK_FIRST_CLOCK, notes
    if state.reset_count < previous.reset_count:
        raise ClockRegressionError(
            f"resetCount went back from {previous.reset_count} to {state.reset_count}"
        )
    if state.reset_count == previous.reset_count:
        if state.restart_count < previous.restart_count:
            raise ClockRegressionError(
                f"restartCount went back from {previous.restart_count} to {state.restart_count} "
                "without a TPM reset"
            )
        if state.restart_count == previous.restart_count and state.clock < previous.clock:
            raise ClockRegressionError(
                f"clock went back from {previous.clock} to {state.clock} ms without a TPM "
                "reset or restart"
            )
        if state.restart_count > previous.restart_count:
            notes.append(
                f"TPM restart (resume) since the previous quote: restartCount "
                f"{previous.restart_count} -> {state.restart_count}"
            )
    else:
        notes.append(
            f"host rebooted since the previous quote: resetCount {previous.reset_count} -> "
            f"{state.reset_count}"
        )
    if state.firmware_version != previous.firmware_version:
        notes.append(
            f"TPM firmware version changed: 0x{previous.firmware_version:016x} -> "
            f"0x{state.firmware_version:016x}"
        )
    if not state.safe:
        notes.append("TPM reports clock not safe (possible unorderly shutdown)")
    return _OK_CLOCK, notes


def _verified_values(selection: PcrSelection, raw_pcrs: PcrValues) -> dict[str, dict[int, bytes]]:
    # Banks in selection order, PCRs ascending (banks without PCRs left out).
    return {
        bank: {pcr: values[pcr] for pcr in indices}
        for bank, indices in selection.banks
        if indices
        for values in (raw_pcrs[bank],)
    }


def evaluate_quote(
    evidence: QuoteEvidence, ak: TpmPublic, expect: QuoteExpectations
) -> QuoteResult:
    """Run every verification step; return each step's check and, if all pass, the quote.

    Never raises for bad evidence: failures are FAIL checks and ``error`` holds
    the first one (in step order). Steps that depend on a failed step are not run.

    A quote that passes every step is decided by :func:`_evaluate_passing`
    (the same steps, without per-step bookkeeping); any other quote by
    :func:`_evaluate_steps`, which explains every failure. Both give the same
    result for a passing quote (a unit test compares them).
    """
    return _evaluate_passing(evidence, ak, expect) or _evaluate_steps(evidence, ak, expect)


# Checks of passing steps: immutable values, built once and shared by all results.
_PASS: dict[object, Check] = registered({})


def _pass(check_id: str, reason: str) -> Check:
    key = (check_id, reason)
    check = _PASS.get(key)
    if check is None:
        check = passed(check_id, COMPONENT, reason)
        _memo_put(_PASS, key, check)
    return check


def _evaluate_passing(
    evidence: QuoteEvidence, ak: TpmPublic, expect: QuoteExpectations
) -> QuoteResult | None:
    """Every step of the module docstring, in order; ``None`` as soon as one does not pass."""
    # 1.
    try:
        a = parse_attest(evidence.attest)
        sig = parse_signature(evidence.signature)
    except TpmFormatError:
        return None
    quote = a.quote
    # 2-3.
    if a.magic != TPM_GENERATED_VALUE or a.type != _ATTEST_QUOTE or quote is None:
        return None
    # 4-5.
    try:
        scheme = check_ak(ak, expect.key_rules)
        if sig.sig_alg != scheme.sig_alg or sig.hash_alg != scheme.hash_alg:
            return None
        verify_signature(
            ak.public_key(),
            sig,
            evidence.attest,
            expected_sig_alg=scheme.sig_alg,
            expected_hash_alg=scheme.hash_alg,
        )
    except SoapAttestError:
        return None
    # 6.
    nonce = expect.nonce
    if not nonce or not hmac.compare_digest(a.extra_data, nonce):
        return None
    # 7.
    qs = a.qualified_signer
    if len(qs) < 2 or int.from_bytes(qs[:2], "big") != ak.name_alg:
        return None
    if expect.qualified_signer and not hmac.compare_digest(qs, expect.qualified_signer):
        return None
    # 8.
    selection = quote.pcr_select
    raw_pcrs = evidence.raw_pcrs
    facts = _selection_facts(selection)
    if not _selection_matches(facts, raw_pcrs, expect.required):
        return None
    # 9.
    hname = scheme.hash_name
    new = _PCR_HASHES.get(hname)
    if new is None:
        return None
    digest = new(b"".join([raw_pcrs[bank][pcr] for bank, pcr in facts.pairs])).digest()
    if not hmac.compare_digest(digest, quote.pcr_digest):
        return None
    # 10.
    state = _clock_state(a)
    try:
        clock_reason, notes = _check_clock(state, expect.previous)
    except QuoteVerificationError:
        return None
    checks = [
        _pass("quote.format", _OK_FORMAT),
        _pass("quote.magic", _OK_MAGIC),
        _pass("quote.type", _OK_TYPE),
        _pass("quote.signature_scheme", _scheme_reason(scheme)),
        _pass("quote.signature", _OK_SIGNATURE),
        _pass("quote.nonce", _OK_NONCE),
        _pass("quote.qualified_signer", _OK_SIGNER),
        _pass("quote.pcr_selection", facts.description),
        _pass("quote.pcr_digest", _digest_reason(hname)),
        _pass("quote.clock", clock_reason),
    ]
    checks.extend(info("quote.reboot", COMPONENT, note) for note in notes)
    previous = expect.previous
    verified = VerifiedQuote(
        attest=a,
        selection=selection,
        pcrs=_verified_values(selection, raw_pcrs),
        state=state,
        reboot=previous is not None and state.reset_count != previous.reset_count,
    )
    return QuoteResult(tuple(checks), verified, None, a)


def _evaluate_steps(
    evidence: QuoteEvidence, ak: TpmPublic, expect: QuoteExpectations
) -> QuoteResult:
    """Every step with its own check; failures explained (see :func:`evaluate_quote`)."""
    checks: list[Check] = []
    errors: list[QuoteVerificationError] = []

    def step(check_id: str, fn: Callable[[], str]) -> bool:
        try:
            reason = fn()
        except QuoteVerificationError as exc:
            # The error names the exact rule (e.g. quote.key_strength inside quote.signature).
            checks.append(failed(exc.step, COMPONENT, exc.message))
            errors.append(exc)
            return False
        except SoapAttestError as exc:  # AK rules (registration-time errors) re-checked here
            wrapped = QuoteVerificationError(exc.message)
            wrapped.step = check_id
            checks.append(failed(check_id, COMPONENT, exc.message))
            errors.append(wrapped)
            return False
        checks.append(passed(check_id, COMPONENT, reason))
        return True

    # 1. Parse. Without structures nothing else can be checked.
    attest: Attest | None = None
    signature: Signature | None = None
    try:
        attest = parse_attest(evidence.attest)
        signature = parse_signature(evidence.signature)
    except TpmFormatError as exc:
        err = QuoteFormatError(f"quote does not parse: {exc.message}")
        checks.append(failed("quote.format", COMPONENT, err.message))
        return QuoteResult(tuple(checks), None, err, attest)
    checks.append(passed("quote.format", COMPONENT, _OK_FORMAT))
    a, sig = attest, signature

    scheme_holder: list[AkScheme] = []

    def key_and_scheme() -> str:
        # 4. Scheme and hash come from the AK template, never from the signature.
        scheme = check_ak(ak, expect.key_rules)
        if (sig.sig_alg, sig.hash_alg) != (scheme.sig_alg, scheme.hash_alg):
            raise SignatureSchemeError(
                f"signature uses scheme 0x{sig.sig_alg:04x} hash 0x{sig.hash_alg:04x}; the AK "
                f"template fixes 0x{scheme.sig_alg:04x}/{scheme.hash_name}"
            )
        scheme_holder.append(scheme)
        return _scheme_reason(scheme)

    def signature_valid() -> str:
        # 5. The signature covers the exact TPMS_ATTEST bytes.
        scheme = scheme_holder[0]
        verify_signature(
            ak.public_key(),
            sig,
            evidence.attest,
            expected_sig_alg=scheme.sig_alg,
            expected_hash_alg=scheme.hash_alg,
        )
        return _OK_SIGNATURE

    step("quote.magic", lambda: _check_magic(a))
    type_ok = step("quote.type", lambda: _check_type(a))
    scheme_ok = step("quote.signature_scheme", key_and_scheme)
    sig_ok = scheme_ok and step("quote.signature", signature_valid)
    step("quote.nonce", lambda: _check_nonce(a, expect.nonce))
    step("quote.qualified_signer", lambda: _check_qualified_signer(a, ak, expect.qualified_signer))
    selection_ok = False
    if type_ok and a.quote is not None:
        sel = a.quote.pcr_select
        selection_ok = step(
            "quote.pcr_selection", lambda: _check_selection(sel, evidence.raw_pcrs, expect.required)
        )
        if selection_ok and scheme_holder:
            step(
                "quote.pcr_digest",
                lambda: _check_digest(a, sel, evidence.raw_pcrs, scheme_holder[0].hash_name),
            )
    state = _clock_state(a)
    notes: list[str] = []

    def clock() -> str:
        reason, found = _check_clock(state, expect.previous)
        notes.extend(found)
        return reason

    # Counters are only meaningful when the signature vouches for them.
    if sig_ok:
        step("quote.clock", clock)
    for note in notes:
        checks.append(info("quote.reboot", COMPONENT, note))

    if errors or a.quote is None or not sig_ok:
        return QuoteResult(tuple(checks), None, errors[0] if errors else None, a)
    reboot = expect.previous is not None and state.reset_count != expect.previous.reset_count
    verified = VerifiedQuote(
        attest=a,
        selection=a.quote.pcr_select,
        pcrs=_verified_values(a.quote.pcr_select, evidence.raw_pcrs),
        state=state,
        reboot=reboot,
    )
    return QuoteResult(tuple(checks), verified, None, a)


def verify_quote(
    evidence: QuoteEvidence, ak: TpmPublic, expect: QuoteExpectations
) -> VerifiedQuote:
    """Verify a quote; return the :class:`VerifiedQuote` or raise the first failure.

    Raises a :class:`~soapattest.errors.QuoteVerificationError` subclass naming
    the failed step (see the module docstring for the order).
    """
    result = evaluate_quote(evidence, ak, expect)
    if result.verified is None:
        raise result.error or QuoteVerificationError("quote did not verify")
    return result.verified


def raw_pcrs_from_pairs(pairs: Mapping[tuple[str, int], bytes]) -> PcrValues:
    """Group ``{(bank, pcr): value}`` into the ``{bank: {pcr: value}}`` shape."""
    out: dict[str, dict[int, bytes]] = {}
    for (bank, pcr), value in pairs.items():
        out.setdefault(bank, {})[pcr] = value
    return out
