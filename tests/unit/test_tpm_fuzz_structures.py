"""Property tests: the TPM structure parsers on random and mutated bytes, and round trips.

Only soapattest errors (subclasses of SoapAttestError) may escape a parser of
untrusted bytes: never IndexError, struct.error, ValueError, OverflowError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from soapattest.errors import SoapAttestError
from soapattest.tpm.attest import (
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
from soapattest.tpm.constants import (
    HASH_ALGORITHMS,
    OBJECT_ATTRIBUTES_RESERVED,
    TPM_GENERATED_VALUE,
    TpmAlg,
)
from soapattest.tpm.marshal import (
    attest_to_bytes,
    build_attest,
    build_signature_ecdsa,
    build_signature_rsa,
    public_to_bytes,
)
from soapattest.tpm.pcr import PcrSelection, pcr_selection_from_bytes
from soapattest.tpm.public import (
    CURVES,
    ECC_SCHEMES,
    KDF_ALGS,
    RSA_KEY_BITS,
    RSA_SCHEMES,
    SYM_MODES,
    TpmPublic,
    parse_public,
)
from soapattest.tpm.signature import parse_signature

FUZZ = settings(max_examples=300, deadline=None)
ROUND = settings(max_examples=150, deadline=None)

HASH_IDS = sorted(HASH_ALGORITHMS)
BANKS = [h.name for h in HASH_ALGORITHMS.values()]

u8s = st.integers(0, 0xFF)
u16s = st.integers(0, 0xFFFF)
u32s = st.integers(0, 0xFFFFFFFF)
u64s = st.integers(0, 2**64 - 1)


def _only_soap_errors(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except SoapAttestError:
        return None


# ---------------------------------------------------------------- strategies


@st.composite
def selections(draw: st.DrawFn) -> PcrSelection:
    banks = draw(st.lists(st.sampled_from(BANKS), min_size=1, max_size=5, unique=True))
    return PcrSelection.from_mapping(
        {b: draw(st.sets(st.integers(0, 23), min_size=1)) for b in banks}
    )


clocks = st.builds(ClockInfo, u64s, u32s, u32s, st.booleans())
digests = st.binary(max_size=64)
names = st.binary(max_size=66)

bodies = st.one_of(
    st.builds(QuoteInfo, selections(), digests),
    st.builds(CertifyInfo, names, names),
    st.builds(CreationInfo, names, digests),
    st.builds(CommandAuditInfo, u64s, st.sampled_from(HASH_IDS), digests, digests),
    st.builds(SessionAuditInfo, st.booleans(), digests),
    st.builds(TimeAttestInfo, u64s, clocks, u64s),
    st.builds(NvCertifyInfo, names, u16s, st.binary(max_size=300)),
    st.builds(NvDigestCertifyInfo, names, digests),
)


@st.composite
def attests(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "attested": draw(bodies),
        "extra_data": draw(st.binary(max_size=66)),
        "qualified_signer": draw(names),
        "clock_info": draw(clocks),
        "firmware_version": draw(u64s),
        "magic": draw(st.one_of(st.just(TPM_GENERATED_VALUE), u32s)),
    }


def _hash_of(draw: st.DrawFn) -> int:
    return draw(st.sampled_from(HASH_IDS))


@st.composite
def publics(draw: st.DrawFn) -> TpmPublic:
    typ = draw(st.sampled_from([TpmAlg.RSA, TpmAlg.ECC, TpmAlg.KEYEDHASH, TpmAlg.SYMCIPHER]))
    name_alg = _hash_of(draw)
    policy = draw(st.sampled_from([b"", bytes(HASH_ALGORITHMS[name_alg].digest_size)]))
    attrs = draw(u32s) & ~OBJECT_ATTRIBUTES_RESERVED
    sym: tuple[int, int, int] | None = draw(
        st.one_of(
            st.none(),
            st.tuples(
                st.just(int(TpmAlg.AES)),
                st.sampled_from([128, 192, 256]),
                st.sampled_from(sorted(SYM_MODES)),
            ),
        )
    )
    scheme, scheme_hash = int(TpmAlg.NULL), int(TpmAlg.NULL)
    fields: dict[str, Any] = {
        "rsa_bits": None,
        "rsa_exponent": None,
        "ecc_curve": None,
        "kdf": None,
        "ecdaa_count": None,
    }
    unique: bytes | tuple[bytes, bytes]
    if typ == TpmAlg.RSA:
        scheme = draw(st.sampled_from([TpmAlg.NULL, *sorted(RSA_SCHEMES)]))
        if scheme not in (TpmAlg.NULL, TpmAlg.RSAES):
            scheme_hash = _hash_of(draw)
        bits = draw(st.sampled_from(sorted(RSA_KEY_BITS)))
        exponent = draw(st.one_of(st.just(0), st.integers(1, 2**31 - 1).map(lambda e: 2 * e + 1)))
        fields.update(rsa_bits=bits, rsa_exponent=exponent)
        unique = draw(st.sampled_from([b"", b"\x80" * (bits // 8)]))
    elif typ == TpmAlg.ECC:
        scheme = draw(st.sampled_from([TpmAlg.NULL, *sorted(ECC_SCHEMES)]))
        if scheme != TpmAlg.NULL:
            scheme_hash = _hash_of(draw)
        if scheme == TpmAlg.ECDAA:
            fields["ecdaa_count"] = draw(u16s)
        curve = draw(st.sampled_from(sorted(CURVES)))
        size = CURVES[curve][1]
        kdf = draw(
            st.one_of(
                st.none(), st.tuples(st.sampled_from(sorted(KDF_ALGS)), st.sampled_from(HASH_IDS))
            )
        )
        fields.update(ecc_curve=curve, kdf=kdf)
        unique = (draw(st.binary(max_size=size)), draw(st.binary(max_size=size)))
    elif typ == TpmAlg.KEYEDHASH:
        sym = None
        scheme = draw(st.sampled_from([TpmAlg.NULL, TpmAlg.HMAC, TpmAlg.XOR]))
        if scheme != TpmAlg.NULL:
            scheme_hash = _hash_of(draw)
        if scheme == TpmAlg.XOR:
            fields["kdf"] = (draw(st.sampled_from(sorted(KDF_ALGS))), scheme_hash)
        unique = draw(digests)
    else:
        if sym is None:
            sym = (int(TpmAlg.AES), 128, int(TpmAlg.CFB))
        unique = draw(digests)
    return TpmPublic(
        type=typ,
        name_alg=name_alg,
        object_attributes=attrs,
        auth_policy=policy,
        symmetric=sym,
        scheme=scheme,
        scheme_hash=scheme_hash,
        unique=unique,
        raw=b"",
        **fields,
    )


signatures = st.one_of(
    st.builds(
        build_signature_ecdsa,
        st.integers(0, 2**528 - 1),
        st.integers(0, 2**528 - 1),
        st.sampled_from(HASH_IDS),
    ),
    st.builds(
        build_signature_rsa,
        st.binary(max_size=512),
        st.sampled_from(HASH_IDS),
        sig_alg=st.sampled_from([TpmAlg.RSASSA, TpmAlg.RSAPSS]),
    ),
)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid structure with a few byte-level mutations."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set16", "truncate", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set16" and len(data) >= 2:
            pos = min(pos, len(data) - 2)
            val = draw(st.sampled_from([0, 1, 0x10, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF]))
            data[pos : pos + 2] = val.to_bytes(2, "big")
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
    return bytes(data)


def _use_public(data: bytes, sized: bool) -> None:
    p = parse_public(data, sized=sized)
    p.name()
    _only_soap_errors(p.public_key)


# ---------------------------------------------------------------- random bytes


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_attest(data: bytes) -> None:
    _only_soap_errors(lambda: parse_attest(data))


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_signature(data: bytes) -> None:
    _only_soap_errors(lambda: parse_signature(data))


@FUZZ
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_public(data: bytes, sized: bool) -> None:
    _only_soap_errors(lambda: _use_public(data, sized))


@FUZZ
@given(st.binary(max_size=64))
def test_random_bytes_pcr_selection(data: bytes) -> None:
    _only_soap_errors(lambda: pcr_selection_from_bytes(data))


# ---------------------------------------------------------------- mutations


@FUZZ
@given(mutated(attests().map(lambda kw: build_attest(**kw))))
def test_mutated_attest(data: bytes) -> None:
    _only_soap_errors(lambda: parse_attest(data))


@FUZZ
@given(mutated(signatures))
def test_mutated_signature(data: bytes) -> None:
    _only_soap_errors(lambda: parse_signature(data))


@FUZZ
@given(mutated(publics().map(public_to_bytes)))
def test_mutated_public(data: bytes) -> None:
    _only_soap_errors(lambda: _use_public(data, True))


# ---------------------------------------------------------------- round trips


@ROUND
@given(attests())
def test_attest_round_trip(kw: dict[str, Any]) -> None:
    data = build_attest(**kw)
    a = parse_attest(data)
    assert a.attested == kw["attested"]
    assert a.quote == (kw["attested"] if isinstance(kw["attested"], QuoteInfo) else None)
    assert (a.magic, a.extra_data, a.qualified_signer, a.clock_info, a.firmware_version) == (
        kw["magic"],
        kw["extra_data"],
        kw["qualified_signer"],
        kw["clock_info"],
        kw["firmware_version"],
    )
    assert a.raw == data
    assert attest_to_bytes(a) == data


@ROUND
@given(selections())
def test_pcr_selection_round_trip(sel: PcrSelection) -> None:
    assert pcr_selection_from_bytes(sel.to_bytes()) == sel
    assert PcrSelection.from_mapping(sel.as_dict()) == sel


@ROUND
@given(signatures)
def test_signature_round_trip(data: bytes) -> None:
    sig = parse_signature(data)
    if sig.sig_alg == TpmAlg.ECDSA:
        assert sig.ecdsa_r is not None and sig.ecdsa_s is not None
        assert build_signature_ecdsa(sig.ecdsa_r, sig.ecdsa_s, sig.hash_alg) == data
    else:
        assert sig.rsa_signature is not None
        assert build_signature_rsa(sig.rsa_signature, sig.hash_alg, sig_alg=sig.sig_alg) == data


@ROUND
@given(publics(), st.booleans())
def test_public_round_trip(p: TpmPublic, sized: bool) -> None:
    data = public_to_bytes(p, sized=sized)
    parsed = parse_public(data, sized=sized)
    assert parsed.raw == (data[2:] if sized else data)
    assert replace(parsed, raw=b"") == p
