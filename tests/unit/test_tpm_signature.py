"""TPMT_SIGNATURE parsing and verification (soapattest.tpm.signature)."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from soapattest.errors import (
    InvalidValueError,
    NullSignatureError,
    SignatureInvalidError,
    SignatureSchemeError,
    TrailingBytesError,
    TruncatedError,
    UnknownAlgorithmError,
    WeakKeyError,
)
from soapattest.tpm.constants import TpmAlg
from soapattest.tpm.marshal import (
    build_signature_ecdsa,
    build_signature_rsa,
    sign_ecdsa,
    sign_rsa,
    tpm2b,
    u16,
)
from soapattest.tpm.signature import Signature, parse_signature, verify_signature

MSG = b"\xffTCG\x80\x18 a TPMS_ATTEST stands here"


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


# ---------------------------------------------------------------- parse


def test_parse_ecdsa() -> None:
    data = build_signature_ecdsa(5, 0x0102, TpmAlg.SHA256, size=32)
    sig = parse_signature(data)
    assert (sig.sig_alg, sig.hash_alg, sig.ecdsa_r, sig.ecdsa_s) == (
        TpmAlg.ECDSA,
        TpmAlg.SHA256,
        5,
        0x0102,
    )
    assert sig.rsa_signature is None and sig.raw == data


@pytest.mark.parametrize("alg", [TpmAlg.RSASSA, TpmAlg.RSAPSS])
def test_parse_rsa(alg: int) -> None:
    data = build_signature_rsa(b"s" * 256, TpmAlg.SHA384, sig_alg=alg)
    sig = parse_signature(data)
    assert (sig.sig_alg, sig.hash_alg, sig.rsa_signature) == (alg, TpmAlg.SHA384, b"s" * 256)
    assert sig.ecdsa_r is None and sig.ecdsa_s is None


def test_rejects_null_signature() -> None:
    with pytest.raises(NullSignatureError):
        parse_signature(u16(TpmAlg.NULL))


@pytest.mark.parametrize("alg", [TpmAlg.HMAC, TpmAlg.ECDAA, TpmAlg.SM2, TpmAlg.ECSCHNORR, 0x7777])
def test_rejects_other_schemes(alg: int) -> None:
    with pytest.raises(UnknownAlgorithmError) as exc:
        parse_signature(u16(alg) + u16(TpmAlg.SHA256) + tpm2b(b"x") + tpm2b(b"y"))
    assert exc.value.alg == alg
    assert not isinstance(exc.value, NullSignatureError)


@pytest.mark.parametrize("hash_alg", [TpmAlg.NULL, TpmAlg.RSA, 0x0099])
def test_rejects_unknown_hash(hash_alg: int) -> None:
    with pytest.raises(UnknownAlgorithmError):
        parse_signature(build_signature_ecdsa(1, 1, hash_alg))


def test_rejects_every_truncation() -> None:
    data = build_signature_ecdsa(3, 4, TpmAlg.SHA256, size=32)
    for n in range(len(data)):
        with pytest.raises(TruncatedError):
            parse_signature(data[:n])


def test_rejects_trailing_bytes() -> None:
    data = build_signature_rsa(b"s" * 256, TpmAlg.SHA256)
    with pytest.raises(TrailingBytesError):
        parse_signature(data + b"\0")


def test_rsa_signature_bound() -> None:
    parse_signature(build_signature_rsa(b"s" * 512, TpmAlg.SHA256))
    with pytest.raises(InvalidValueError):
        parse_signature(build_signature_rsa(b"s" * 513, TpmAlg.SHA256))


def test_ecc_parameter_bound() -> None:
    parse_signature(build_signature_ecdsa(1, 1, TpmAlg.SHA256, size=66))
    with pytest.raises(InvalidValueError):
        parse_signature(build_signature_ecdsa(1, 1, TpmAlg.SHA256, size=67))


# ---------------------------------------------------------------- verify


def _ok_ecdsa(key: ec.EllipticCurvePrivateKey, hash_alg: int = TpmAlg.SHA256) -> None:
    sig = parse_signature(sign_ecdsa(key, MSG, hash_alg))
    verify_signature(
        key.public_key(), sig, MSG, expected_sig_alg=TpmAlg.ECDSA, expected_hash_alg=hash_alg
    )


def test_verify_ecdsa(ec_key: ec.EllipticCurvePrivateKey) -> None:
    _ok_ecdsa(ec_key)
    _ok_ecdsa(ec_key, TpmAlg.SHA384)


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1()])
def test_verify_ecdsa_larger_curves(curve: ec.EllipticCurve) -> None:
    _ok_ecdsa(ec.generate_private_key(curve), TpmAlg.SHA512)


@pytest.mark.parametrize("alg", [TpmAlg.RSASSA, TpmAlg.RSAPSS])
def test_verify_rsa(rsa_key: rsa.RSAPrivateKey, alg: int) -> None:
    sig = parse_signature(sign_rsa(rsa_key, MSG, TpmAlg.SHA256, sig_alg=alg))
    verify_signature(
        rsa_key.public_key(), sig, MSG, expected_sig_alg=alg, expected_hash_alg=TpmAlg.SHA256
    )


def test_verify_rsapss_accepts_maximum_salt(rsa_key: rsa.RSAPrivateKey) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    raw = rsa_key.sign(MSG, pss, hashes.SHA256())
    sig = parse_signature(build_signature_rsa(raw, TpmAlg.SHA256, sig_alg=TpmAlg.RSAPSS))
    verify_signature(
        rsa_key.public_key(),
        sig,
        MSG,
        expected_sig_alg=TpmAlg.RSAPSS,
        expected_hash_alg=TpmAlg.SHA256,
    )


def test_rejects_other_signature_scheme_than_template(rsa_key: rsa.RSAPrivateKey) -> None:
    sig = parse_signature(sign_rsa(rsa_key, MSG, TpmAlg.SHA256, sig_alg=TpmAlg.RSAPSS))
    with pytest.raises(SignatureSchemeError):
        verify_signature(
            rsa_key.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.RSASSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


def test_rejects_other_hash_than_template(ec_key: ec.EllipticCurvePrivateKey) -> None:
    sig = parse_signature(sign_ecdsa(ec_key, MSG, TpmAlg.SHA384))
    with pytest.raises(SignatureSchemeError):
        verify_signature(
            ec_key.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.ECDSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


def test_rejects_rsa_signature_with_ec_key(
    ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    sig = parse_signature(sign_rsa(rsa_key, MSG, TpmAlg.SHA256))
    with pytest.raises(SignatureSchemeError):
        verify_signature(
            ec_key.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.RSASSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


def test_rejects_ecdsa_signature_with_rsa_key(
    ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    sig = parse_signature(sign_ecdsa(ec_key, MSG, TpmAlg.SHA256))
    with pytest.raises(SignatureSchemeError):
        verify_signature(
            rsa_key.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.ECDSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


def test_rejects_sha1(ec_key: ec.EllipticCurvePrivateKey) -> None:
    der = ec_key.sign(MSG, ec.ECDSA(hashes.SHA1()))  # noqa: S303 - the weak case under test
    r, s = decode_dss_signature(der)
    sig = parse_signature(build_signature_ecdsa(r, s, TpmAlg.SHA1))
    with pytest.raises(WeakKeyError):
        verify_signature(
            ec_key.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.ECDSA,
            expected_hash_alg=TpmAlg.SHA1,
        )


def test_rejects_small_rsa_key() -> None:
    small = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the refused case
    sig = parse_signature(sign_rsa(small, MSG, TpmAlg.SHA256))
    with pytest.raises(WeakKeyError):
        verify_signature(
            small.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.RSASSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


@pytest.mark.parametrize("curve", [ec.SECP224R1(), ec.SECP256K1()])
def test_rejects_other_curves(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    sig = parse_signature(sign_ecdsa(key, MSG, TpmAlg.SHA256))
    with pytest.raises(WeakKeyError):
        verify_signature(
            key.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.ECDSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


def test_rejects_modified_message(ec_key: ec.EllipticCurvePrivateKey) -> None:
    sig = parse_signature(sign_ecdsa(ec_key, MSG, TpmAlg.SHA256))
    with pytest.raises(SignatureInvalidError):
        verify_signature(
            ec_key.public_key(),
            sig,
            MSG + b"\0",
            expected_sig_alg=TpmAlg.ECDSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


@pytest.mark.parametrize(("r", "s"), [(0, 1), (1, 0), (0, 0), (2**528 - 1, 1)])
def test_rejects_degenerate_ecdsa_values(
    ec_key: ec.EllipticCurvePrivateKey, r: int, s: int
) -> None:
    sig = parse_signature(build_signature_ecdsa(r, s, TpmAlg.SHA256))
    with pytest.raises(SignatureInvalidError):
        verify_signature(
            ec_key.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.ECDSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


def test_rejects_ecdsa_r_off_by_one(ec_key: ec.EllipticCurvePrivateKey) -> None:
    good = parse_signature(sign_ecdsa(ec_key, MSG, TpmAlg.SHA256))
    assert good.ecdsa_r is not None and good.ecdsa_s is not None
    bad = parse_signature(build_signature_ecdsa(good.ecdsa_r ^ 1, good.ecdsa_s, TpmAlg.SHA256))
    with pytest.raises(SignatureInvalidError):
        verify_signature(
            ec_key.public_key(),
            bad,
            MSG,
            expected_sig_alg=TpmAlg.ECDSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


@pytest.mark.parametrize("raw", [b"", b"\0" * 255, b"\xff" * 256, b"\0" * 257])
def test_rejects_bad_rsa_signature_bytes(rsa_key: rsa.RSAPrivateKey, raw: bytes) -> None:
    sig = parse_signature(build_signature_rsa(raw, TpmAlg.SHA256))
    with pytest.raises(SignatureInvalidError):
        verify_signature(
            rsa_key.public_key(),
            sig,
            MSG,
            expected_sig_alg=TpmAlg.RSASSA,
            expected_hash_alg=TpmAlg.SHA256,
        )


def test_parsed_signature_is_a_complete_frozen_dataclass() -> None:
    sig = parse_signature(build_signature_ecdsa(3, 4, TpmAlg.SHA256))
    rebuilt = Signature(**{f.name: getattr(sig, f.name) for f in dataclasses.fields(Signature)})
    assert rebuilt == sig
    assert set(vars(sig)) == {f.name for f in dataclasses.fields(Signature)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        sig.sig_alg = 0  # type: ignore[misc]
