"""verify_quote: one test per rejection reason, each beside the passing case it breaks."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from soapattest.errors import (
    BadMagicError,
    ClockRegressionError,
    NonceMismatchError,
    PcrDigestMismatchError,
    PcrSelectionMismatchError,
    QualifiedSignerError,
    QuoteFormatError,
    QuoteVerificationError,
    SignatureInvalidError,
    SignatureSchemeError,
    WeakKeyError,
    WrongAttestTypeError,
)
from soapattest.model import CheckStatus, QuoteState
from soapattest.testing.unsafe_soft_tpm import UnsafeSoftTpm
from soapattest.tpm.attest import CertifyInfo, ClockInfo
from soapattest.tpm.constants import ObjectAttributes, TpmAlg
from soapattest.tpm.marshal import AK_ATTRIBUTES, build_attest, build_public_ecc, build_quote
from soapattest.tpm.pcr import PcrSelection, pcr_digest
from soapattest.tpm.public import parse_public
from soapattest.verify.identity import KeyRules
from soapattest.verify.quote import (
    QuoteEvidence,
    QuoteExpectations,
    evaluate_quote,
    verify_quote,
)

SELECTION = {"sha256": [0, 1, 2, 3, 4, 7]}


@pytest.fixture(params=["ecc", "rsa"])
def tpm(request: pytest.FixtureRequest) -> UnsafeSoftTpm:
    t = UnsafeSoftTpm(key_type=request.param, banks=("sha1", "sha256"))
    for pcr in (0, 4, 7):
        t.extend(pcr, {"sha1": os.urandom(20), "sha256": os.urandom(32)})
    return t


@pytest.fixture
def nonce() -> bytes:
    return os.urandom(20)


def expect(nonce: bytes, **kw: object) -> QuoteExpectations:
    return QuoteExpectations(nonce=nonce, **kw)  # type: ignore[arg-type]


def test_genuine_quote_verifies_with_every_step_passing(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    ev = tpm.quote(nonce, SELECTION)
    result = evaluate_quote(ev, tpm.ak, expect(nonce, qualified_signer=tpm.qualified_signer))
    assert result.error is None
    assert result.verified is not None
    assert {c.status for c in result.checks} == {CheckStatus.PASS}
    ids = [c.id for c in result.checks]
    assert ids == [
        "quote.format",
        "quote.magic",
        "quote.type",
        "quote.signature_scheme",
        "quote.signature",
        "quote.nonce",
        "quote.qualified_signer",
        "quote.pcr_selection",
        "quote.pcr_digest",
        "quote.clock",
    ]
    assert result.verified.pcrs["sha256"][4] == tpm.pcrs["sha256"][4]
    assert set(result.verified.pcrs["sha256"]) == set(SELECTION["sha256"])


def _fails(ev: QuoteEvidence, tpm: UnsafeSoftTpm, exp: QuoteExpectations, err: type) -> None:
    result = evaluate_quote(ev, tpm.ak, exp)
    assert result.verified is None
    assert isinstance(result.error, err), result.error
    assert any(c.status is CheckStatus.FAIL and c.id == err.step for c in result.checks)
    with pytest.raises(err):
        verify_quote(ev, tpm.ak, exp)


def test_bit_flipped_signature_is_rejected(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    ev = tpm.quote(nonce, SELECTION)
    sig = bytearray(ev.signature)
    sig[-5] ^= 0x01
    _fails(replace(ev, signature=bytes(sig)), tpm, expect(nonce), SignatureInvalidError)


def test_bit_flipped_attest_is_rejected(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    ev = tpm.quote(nonce, SELECTION)
    attest = bytearray(ev.attest)
    attest[-1] ^= 0x80  # last byte of pcrDigest
    _fails(replace(ev, attest=bytes(attest)), tpm, expect(nonce), SignatureInvalidError)


def test_quote_signed_by_another_hosts_ak_is_rejected(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    other = UnsafeSoftTpm(key_type=tpm.key_type, banks=tpm.banks)
    ev = other.quote(nonce, SELECTION)
    _fails(ev, tpm, expect(nonce), SignatureInvalidError)
    # positive twin: the other host's own AK accepts it
    assert verify_quote(ev, other.ak, expect(nonce)).pcrs


def test_other_nonce_is_rejected(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    ev = tpm.quote(os.urandom(20), SELECTION)
    _fails(ev, tpm, expect(nonce), NonceMismatchError)


def test_nonce_prefix_is_rejected(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    ev = tpm.quote(nonce[:10], SELECTION)
    _fails(ev, tpm, expect(nonce), NonceMismatchError)


def test_empty_expected_nonce_never_verifies(tpm: UnsafeSoftTpm) -> None:
    ev = tpm.quote(b"", SELECTION)
    _fails(ev, tpm, expect(b""), NonceMismatchError)


def _signed(tpm: UnsafeSoftTpm, attest: bytes, raw: dict[str, dict[int, bytes]]) -> QuoteEvidence:
    return QuoteEvidence(attest=attest, signature=tpm.sign(attest), raw_pcrs=raw)


def test_wrong_magic_is_rejected_even_when_signed(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    sel = PcrSelection.from_mapping(SELECTION)
    values = tpm.values(sel)
    attest = build_quote(
        pcr_select=sel,
        pcr_digest=pcr_digest("sha256", sel, values),
        extra_data=nonce,
        qualified_signer=tpm.qualified_signer,
        magic=0x12345678,
    )
    _fails(_signed(tpm, attest, values), tpm, expect(nonce), BadMagicError)


def test_certify_structure_carrying_the_nonce_is_rejected(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    attest = build_attest(
        attested=CertifyInfo(name=tpm.ak_name, qualified_name=tpm.qualified_signer),
        extra_data=nonce,
        qualified_signer=tpm.qualified_signer,
    )
    ev = _signed(tpm, attest, tpm.values(PcrSelection.from_mapping(SELECTION)))
    _fails(ev, tpm, expect(nonce), WrongAttestTypeError)


def test_trailing_bytes_after_attest_are_rejected(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    ev = tpm.quote(nonce, SELECTION)
    attest = ev.attest + b"\x00"
    _fails(_signed(tpm, attest, dict(ev.raw_pcrs)), tpm, expect(nonce), QuoteFormatError)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda raw: raw["sha256"].pop(4), id="subset-missing-value"),
        pytest.param(lambda raw: raw["sha256"].__setitem__(9, bytes(32)), id="superset-extra"),
        pytest.param(
            lambda raw: raw["sha256"].__setitem__(5, raw["sha256"].pop(4)), id="other-index"
        ),
        pytest.param(lambda raw: raw.__setitem__("sha1", raw.pop("sha256")), id="other-bank"),
        pytest.param(lambda raw: raw.clear(), id="empty"),
        pytest.param(lambda raw: raw["sha256"].__setitem__(4, bytes(20)), id="wrong-length"),
    ],
)
def test_selection_and_reported_values_must_match_both_ways(
    tpm: UnsafeSoftTpm, nonce: bytes, mutate: object
) -> None:
    ev = tpm.quote(nonce, SELECTION)
    raw = {b: dict(v) for b, v in ev.raw_pcrs.items()}
    mutate(raw)  # type: ignore[operator]
    _fails(replace(ev, raw_pcrs=raw), tpm, expect(nonce), PcrSelectionMismatchError)


def test_required_pcrs_must_be_covered(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    ev = tpm.quote(nonce, SELECTION)
    covered = PcrSelection.from_mapping({"sha256": [0, 7]})
    assert verify_quote(ev, tpm.ak, expect(nonce, required=covered))
    needs_more = PcrSelection.from_mapping({"sha256": [0, 7, 8]})
    _fails(ev, tpm, expect(nonce, required=needs_more), PcrSelectionMismatchError)
    needs_sha384 = PcrSelection.from_mapping({"sha384": [0]})
    _fails(ev, tpm, expect(nonce, required=needs_sha384), PcrSelectionMismatchError)


def test_reported_value_changed_after_quote_breaks_the_digest(
    tpm: UnsafeSoftTpm, nonce: bytes
) -> None:
    ev = tpm.quote(nonce, SELECTION)
    raw = {b: dict(v) for b, v in ev.raw_pcrs.items()}
    raw["sha256"][7] = os.urandom(32)
    _fails(replace(ev, raw_pcrs=raw), tpm, expect(nonce), PcrDigestMismatchError)


def test_signature_hash_other_than_the_ak_template_is_rejected(nonce: bytes) -> None:
    tpm = UnsafeSoftTpm(banks=("sha256",))
    tpm.sig_hash = "sha384"  # signs with SHA-384, template fixes SHA-256
    ev = tpm.quote(nonce, SELECTION)
    _fails(ev, tpm, expect(nonce), SignatureSchemeError)


def test_sha1_ak_is_refused_where_sha256_is_required(nonce: bytes) -> None:
    tpm = UnsafeSoftTpm(banks=("sha256",), sig_hash="sha1")
    ev = tpm.quote(nonce, SELECTION)
    _fails(ev, tpm, expect(nonce), SignatureSchemeError)
    # Even a policy that lists sha1 gets no SHA-1 signature accepted: the
    # signature layer refuses the hash outright.
    lax = KeyRules(signature_hashes=("sha1", "sha256"))
    _fails(ev, tpm, expect(nonce, key_rules=lax), WeakKeyError)
    # positive twin: the same flow with a SHA-256 AK
    good = UnsafeSoftTpm(banks=("sha256",), sig_hash="sha256")
    assert verify_quote(good.quote(nonce, SELECTION), good.ak, expect(nonce)).pcrs


def test_non_restricted_ak_is_refused(nonce: bytes) -> None:
    tpm = UnsafeSoftTpm(key_type="ecc")
    key = tpm._key.public_key()  # the same key, described as unrestricted
    loose = parse_public(build_public_ecc(key, AK_ATTRIBUTES & ~ObjectAttributes.RESTRICTED))  # type: ignore[arg-type]
    assert verify_quote(tpm.quote(nonce, SELECTION), tpm.ak, expect(nonce)).pcrs  # twin
    ev = tpm.quote(nonce, SELECTION)
    result = evaluate_quote(ev, loose, expect(nonce))
    assert result.verified is None
    assert isinstance(result.error, QuoteVerificationError)
    assert result.error.step == "quote.signature_scheme"
    assert "RESTRICTED" in result.error.message


def test_weak_rsa_ak_is_refused(nonce: bytes) -> None:
    tpm = UnsafeSoftTpm(key_type="rsa")
    ev = tpm.quote(nonce, SELECTION)
    strict = KeyRules(min_rsa_bits=3072)
    _fails(ev, tpm, expect(nonce, key_rules=strict), WeakKeyError)


def test_qualified_signer_must_match_the_recorded_one(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    ev = tpm.quote(nonce, SELECTION)
    assert verify_quote(ev, tpm.ak, expect(nonce, qualified_signer=tpm.qualified_signer))
    other = tpm.qualified_signer[:2] + os.urandom(32)
    _fails(ev, tpm, expect(nonce, qualified_signer=other), QualifiedSignerError)


def test_qualified_signer_must_use_the_ak_name_algorithm(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    tpm.qualified_signer = TpmAlg.SHA1.to_bytes(2, "big") + os.urandom(20)
    _fails(tpm.quote(nonce, SELECTION), tpm, expect(nonce), QualifiedSignerError)


def _state(tpm: UnsafeSoftTpm, **kw: int) -> QuoteState:
    base = QuoteState(
        clock=tpm.clock,
        reset_count=tpm.reset_count,
        restart_count=tpm.restart_count,
        firmware_version=tpm.firmware_version,
    )
    return replace(base, **kw)


@pytest.mark.parametrize(
    "previous",
    [
        pytest.param({"reset_count": 1}, id="resetCount"),
        pytest.param({"restart_count": 1}, id="restartCount"),
        pytest.param({"clock": 10**9}, id="clock"),
    ],
)
def test_counter_regression_is_rejected(
    tpm: UnsafeSoftTpm, nonce: bytes, previous: dict[str, int]
) -> None:
    prev = _state(tpm)
    adjusted = {k: getattr(prev, k) + v for k, v in previous.items()}
    ev = tpm.quote(nonce, SELECTION)
    _fails(ev, tpm, expect(nonce, previous=replace(prev, **adjusted)), ClockRegressionError)


def test_monotonic_counters_pass_and_reboot_is_reported(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    prev = _state(tpm)
    same_boot = verify_quote(tpm.quote(nonce, SELECTION), tpm.ak, expect(nonce, previous=prev))
    assert same_boot.reboot is False
    tpm.reset()
    result = evaluate_quote(tpm.quote(nonce, SELECTION), tpm.ak, expect(nonce, previous=prev))
    assert result.verified is not None and result.verified.reboot is True
    notes = [c for c in result.checks if c.id == "quote.reboot"]
    assert notes and notes[0].status is CheckStatus.INFO
    assert "rebooted" in notes[0].reason


def test_clock_state_is_only_trusted_when_signed(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    prev = _state(tpm)
    ev = tpm.quote(nonce, SELECTION)
    attest = bytearray(ev.attest)
    bad = replace(ev, attest=bytes(attest[:-1]) + bytes([attest[-1] ^ 1]))
    result = evaluate_quote(bad, tpm.ak, expect(nonce, previous=prev))
    assert all(c.id != "quote.clock" for c in result.checks)
    assert isinstance(result.error, SignatureInvalidError)


def test_clock_info_of_quote_is_parsed(tpm: UnsafeSoftTpm, nonce: bytes) -> None:
    v = verify_quote(tpm.quote(nonce, SELECTION), tpm.ak, expect(nonce))
    assert v.state == QuoteState(
        clock=tpm.clock,
        reset_count=tpm.reset_count,
        restart_count=tpm.restart_count,
        firmware_version=tpm.firmware_version,
        safe=True,
    )
    assert v.attest.clock_info == ClockInfo(tpm.clock, tpm.reset_count, tpm.restart_count, True)
