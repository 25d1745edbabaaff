"""TPMS_ATTEST parsing (soapattest.tpm.attest) on hand-made and hostile bytes."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from soapattest.errors import (
    InvalidPcrSelectionError,
    InvalidValueError,
    TrailingBytesError,
    TruncatedError,
    UnknownAlgorithmError,
    UnknownAttestTypeError,
)
from soapattest.tpm.attest import (
    DATA_MAX,
    NAME_MAX,
    NV_BUFFER_MAX,
    CertifyInfo,
    ClockInfo,
    CommandAuditInfo,
    CreationInfo,
    NvCertifyInfo,
    NvDigestCertifyInfo,
    QuoteInfo,
    SessionAuditInfo,
    TimeAttestInfo,
    parse_attest,
)
from soapattest.tpm.constants import TPM_GENERATED_VALUE, TpmAlg, TpmSt
from soapattest.tpm.marshal import build_attest, build_quote, tpm2b, u8, u16, u32, u64
from soapattest.tpm.pcr import PcrSelection

SIGNER = b"\x00\x0b" + hashlib.sha256(b"signer").digest()
NONCE = bytes(range(32))
SEL = PcrSelection.from_mapping({"sha256": [0, 7], "sha1": [1]})
DIGEST = hashlib.sha256(b"pcrs").digest()


def _clock(safe: int = 1) -> bytes:
    return u64(1000) + u32(2) + u32(3) + u8(safe)


def _attest(
    *,
    magic: int = TPM_GENERATED_VALUE,
    st: int = TpmSt.ATTEST_QUOTE,
    signer: bytes = tpm2b(SIGNER),
    extra: bytes = tpm2b(NONCE),
    clock: bytes | None = None,
    firmware: bytes = u64(0x0102030405060708),
    body: bytes | None = None,
) -> bytes:
    """TPMS_ATTEST assembled from already-marshalled parts (so each can be broken)."""
    return (
        u32(magic)
        + u16(st)
        + signer
        + extra
        + (_clock() if clock is None else clock)
        + firmware
        + (SEL.to_bytes() + tpm2b(DIGEST) if body is None else body)
    )


def test_parses_quote_fields() -> None:
    data = _attest()
    a = parse_attest(data)
    assert a.magic == TPM_GENERATED_VALUE
    assert a.type == TpmSt.ATTEST_QUOTE
    assert a.qualified_signer == SIGNER
    assert a.extra_data == NONCE
    assert a.clock_info == ClockInfo(1000, 2, 3, True)
    assert a.firmware_version == 0x0102030405060708
    assert a.quote == QuoteInfo(SEL, DIGEST)
    assert a.attested is a.quote
    assert a.raw == data


def test_builder_and_hand_made_bytes_agree() -> None:
    built = build_quote(
        pcr_select=SEL,
        pcr_digest=DIGEST,
        extra_data=NONCE,
        qualified_signer=SIGNER,
        clock_info=ClockInfo(1000, 2, 3, True),
        firmware_version=0x0102030405060708,
    )
    assert built == _attest()


def test_wrong_magic_is_returned_not_rejected() -> None:
    a = parse_attest(_attest(magic=0xDEADBEEF))
    assert a.magic == 0xDEADBEEF


def test_rejects_unknown_type() -> None:
    with pytest.raises(UnknownAttestTypeError) as exc:
        parse_attest(_attest(st=0x8013))
    assert exc.value.attest_type == 0x8013


BODIES = [
    QuoteInfo(SEL, DIGEST),
    CertifyInfo(SIGNER, SIGNER[::-1]),
    CreationInfo(SIGNER, DIGEST),
    CommandAuditInfo(7, TpmAlg.SHA384, bytes(48), bytes(48)),
    SessionAuditInfo(True, DIGEST),
    TimeAttestInfo(123, ClockInfo(9, 8, 7, False), 42),
    NvCertifyInfo(SIGNER, 16, b"nv contents"),
    NvDigestCertifyInfo(SIGNER, DIGEST),
]


@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__)
def test_every_attest_type_round_trips(body: object) -> None:
    data = build_attest(attested=body, extra_data=NONCE)  # type: ignore[arg-type]
    a = parse_attest(data)
    assert a.attested == body
    assert (a.quote is not None) == isinstance(body, QuoteInfo)


def test_rejects_type_and_body_mismatch() -> None:
    data = build_attest(attested=CertifyInfo(SIGNER, SIGNER), attest_type=TpmSt.ATTEST_QUOTE)
    # the certify body's first name size reads as TPML_PCR_SELECTION.count 0x0022000b
    with pytest.raises(InvalidPcrSelectionError):
        parse_attest(data)


def test_rejects_every_truncation() -> None:
    data = _attest()
    parse_attest(data)
    for n in range(len(data)):
        with pytest.raises(TruncatedError):
            parse_attest(data[:n])


def test_rejects_trailing_bytes() -> None:
    with pytest.raises(TrailingBytesError):
        parse_attest(_attest() + b"\0")


def test_rejects_signer_size_past_buffer() -> None:
    head = u32(TPM_GENERATED_VALUE) + u16(TpmSt.ATTEST_QUOTE)
    parse_attest(_attest(signer=tpm2b(b"x" * 60)))
    with pytest.raises(TruncatedError):
        parse_attest(head + u16(60) + b"x" * 10)


def test_rejects_extra_data_size_past_buffer() -> None:
    head = u32(TPM_GENERATED_VALUE) + u16(TpmSt.ATTEST_QUOTE) + tpm2b(SIGNER)
    with pytest.raises(TruncatedError):
        parse_attest(head + u16(60) + b"x" * 59)


def test_qualified_signer_bound() -> None:
    assert parse_attest(_attest(signer=tpm2b(b"n" * NAME_MAX))).qualified_signer == b"n" * 66
    with pytest.raises(InvalidValueError):
        parse_attest(_attest(signer=tpm2b(b"n" * (NAME_MAX + 1))))


def test_extra_data_bound() -> None:
    assert parse_attest(_attest(extra=tpm2b(b"d" * DATA_MAX))).extra_data == b"d" * 66
    with pytest.raises(InvalidValueError):
        parse_attest(_attest(extra=tpm2b(b"d" * (DATA_MAX + 1))))


def test_empty_signer_and_extra_data_parse() -> None:
    a = parse_attest(_attest(signer=tpm2b(b""), extra=tpm2b(b"")))
    assert (a.qualified_signer, a.extra_data) == (b"", b"")


@pytest.mark.parametrize("safe", [2, 0xFF])
def test_rejects_safe_not_yes_no(safe: int) -> None:
    with pytest.raises(InvalidValueError):
        parse_attest(_attest(clock=_clock(safe)))


def test_safe_zero_is_false() -> None:
    assert parse_attest(_attest(clock=_clock(0))).clock_info.safe is False


def test_rejects_selection_beyond_24_pcrs() -> None:
    sel = u32(1) + u16(TpmAlg.SHA256) + u8(4) + b"\x01\0\0\0"
    with pytest.raises(InvalidPcrSelectionError):
        parse_attest(_attest(body=sel + tpm2b(DIGEST)))


def test_rejects_unknown_bank_in_selection() -> None:
    sel = u32(1) + u16(0x00AA) + u8(3) + b"\x01\0\0"
    with pytest.raises(UnknownAlgorithmError):
        parse_attest(_attest(body=sel + tpm2b(DIGEST)))


def test_pcr_digest_bound() -> None:
    ok = parse_attest(_attest(body=SEL.to_bytes() + tpm2b(bytes(64))))
    assert ok.quote is not None and len(ok.quote.pcr_digest) == 64
    with pytest.raises(InvalidValueError):
        parse_attest(_attest(body=SEL.to_bytes() + tpm2b(bytes(65))))


def test_rejects_session_audit_exclusive_not_yes_no() -> None:
    parse_attest(_attest(st=TpmSt.ATTEST_SESSION_AUDIT, body=u8(0) + tpm2b(DIGEST)))
    with pytest.raises(InvalidValueError):
        parse_attest(_attest(st=TpmSt.ATTEST_SESSION_AUDIT, body=u8(2) + tpm2b(DIGEST)))


def test_rejects_command_audit_unknown_digest_alg() -> None:
    good = u64(1) + u16(TpmAlg.SHA256) + tpm2b(DIGEST) + tpm2b(DIGEST)
    parse_attest(_attest(st=TpmSt.ATTEST_COMMAND_AUDIT, body=good))
    bad = u64(1) + u16(TpmAlg.RSA) + tpm2b(DIGEST) + tpm2b(DIGEST)
    with pytest.raises(UnknownAlgorithmError):
        parse_attest(_attest(st=TpmSt.ATTEST_COMMAND_AUDIT, body=bad))


def test_rejects_time_attest_clock_not_yes_no() -> None:
    parse_attest(_attest(st=TpmSt.ATTEST_TIME, body=u64(5) + _clock(1) + u64(6)))
    with pytest.raises(InvalidValueError):
        parse_attest(_attest(st=TpmSt.ATTEST_TIME, body=u64(5) + _clock(3) + u64(6)))


def test_nv_contents_bound() -> None:
    def body(n: int) -> bytes:
        return tpm2b(SIGNER) + u16(0) + tpm2b(b"c" * n)

    parse_attest(_attest(st=TpmSt.ATTEST_NV, body=body(NV_BUFFER_MAX)))
    with pytest.raises(InvalidValueError):
        parse_attest(_attest(st=TpmSt.ATTEST_NV, body=body(NV_BUFFER_MAX + 1)))


def test_certify_name_bound() -> None:
    parse_attest(_attest(st=TpmSt.ATTEST_CERTIFY, body=tpm2b(b"n" * 66) + tpm2b(b"")))
    with pytest.raises(InvalidValueError):
        parse_attest(_attest(st=TpmSt.ATTEST_CERTIFY, body=tpm2b(b"n" * 67) + tpm2b(b"")))


def test_accepts_bytearray_and_keeps_bytes_raw() -> None:
    data = _attest()
    a = parse_attest(bytearray(data))  # type: ignore[arg-type]
    assert isinstance(a.raw, bytes) and a.raw == data


@pytest.mark.parametrize("attr", ["self", "clock_info", "quote"])
def test_parsed_objects_are_complete_frozen_dataclasses(attr: str) -> None:
    a = parse_attest(_attest())
    obj = a if attr == "self" else getattr(a, attr)
    cls = type(obj)
    rebuilt = cls(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)})
    assert rebuilt == obj and hash(rebuilt) == hash(obj)
    assert set(vars(obj)) == {f.name for f in dataclasses.fields(cls)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.raw = b""  # type: ignore[misc]
