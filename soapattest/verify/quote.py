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

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
from soapattest.verify.checks import failed, hexs, info, passed
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


def _label(bank: str, pcr: int) -> str:
    return f"{bank}:{pcr}"


def _check_magic(attest: Attest) -> str:
    # 2. Only the TPM puts TPM_GENERATED_VALUE at the start of data it signs.
    if attest.magic != TPM_GENERATED_VALUE:
        raise BadMagicError(
            f"magic is 0x{attest.magic:08x}, not TPM_GENERATED_VALUE 0x{TPM_GENERATED_VALUE:08x}"
        )
    return "magic is TPM_GENERATED_VALUE"


def _check_type(attest: Attest) -> str:
    # 3. A quote, not another attestation structure that happens to carry our nonce.
    if attest.type != TpmSt.ATTEST_QUOTE or attest.quote is None:
        try:
            name = TpmSt(attest.type).name
        except ValueError:
            name = f"0x{attest.type:04x}"
        raise WrongAttestTypeError(f"attestation type is {name}, not ATTEST_QUOTE")
    return "attestation type is ATTEST_QUOTE"


def _check_nonce(attest: Attest, nonce: bytes) -> str:
    # 6. Freshness: one encoding (raw bytes), constant-time comparison.
    if not nonce:
        raise NonceMismatchError("no nonce was issued for this quote; refusing an unbound quote")
    if not hmac.compare_digest(attest.extra_data, nonce):
        raise NonceMismatchError(
            "extraData does not equal the nonce issued for this quote "
            f"(got {len(attest.extra_data)} bytes {hexs(attest.extra_data, 16)})"
        )
    return "extraData equals the issued nonce"


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
    return "qualifiedSigner matches the registered AK"


def _check_selection(
    selection: PcrSelection, raw_pcrs: PcrValues, required: PcrSelection | None
) -> str:
    # 8. Both directions, per bank: quoted == reported; required is a subset.
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
    banks = ", ".join(f"{b}[{','.join(map(str, ps))}]" for b, ps in selection.banks)
    return f"quoted selection equals the reported PCRs: {banks}"


def _check_digest(attest: Attest, selection: PcrSelection, raw_pcrs: PcrValues, hname: str) -> str:
    # 9. pcrDigest is computed with the signing scheme's hash (Part 3, TPM2_Quote).
    assert attest.quote is not None
    try:
        digest = pcr_digest(hname, selection, raw_pcrs)
    except TpmFormatError as exc:
        raise PcrDigestMismatchError(f"cannot recompute the PCR digest: {exc.message}") from exc
    if not hmac.compare_digest(digest, attest.quote.pcr_digest):
        raise PcrDigestMismatchError(
            f"pcrDigest {hexs(attest.quote.pcr_digest, 16)} is not the {hname} of the reported "
            f"PCR values ({hexs(digest, 16)})"
        )
    return f"pcrDigest equals the {hname} of the reported PCR values"


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
        return "first verified quote of this host: clock state recorded", notes
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
    return "resetCount, restartCount and clock did not go backwards", notes


def _verified_values(selection: PcrSelection, raw_pcrs: PcrValues) -> dict[str, dict[int, bytes]]:
    out: dict[str, dict[int, bytes]] = {}
    for bank, pcr in selection.pcrs():
        out.setdefault(bank, {})[pcr] = raw_pcrs[bank][pcr]
    return out


def evaluate_quote(
    evidence: QuoteEvidence, ak: TpmPublic, expect: QuoteExpectations
) -> QuoteResult:
    """Run every verification step; return each step's check and, if all pass, the quote.

    Never raises for bad evidence: failures are FAIL checks and ``error`` holds
    the first one (in step order). Steps that depend on a failed step are not run.
    """
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
    checks.append(passed("quote.format", COMPONENT, "TPMS_ATTEST and TPMT_SIGNATURE parse"))
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
        return f"signature scheme 0x{scheme.sig_alg:04x}/{scheme.hash_name} is the AK's"

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
        return "signature verifies with the registered AK"

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
