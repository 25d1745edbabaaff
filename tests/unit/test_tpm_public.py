"""TPMT_PUBLIC / TPM2B_PUBLIC parsing, names and public keys (soapattest.tpm.public)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from soapattest.errors import (
    InvalidPublicKeyError,
    InvalidValueError,
    NoPublicKeyError,
    ReservedAttributeBitsError,
    TrailingBytesError,
    TruncatedError,
    UnknownAlgorithmError,
    UnsupportedCurveError,
)
from soapattest.tpm.constants import EccCurve, ObjectAttributes, TpmAlg
from soapattest.tpm.marshal import (
    AK_ATTRIBUTES,
    EK_ATTRIBUTES,
    EK_POLICY_SHA256,
    build_public_ecc,
    build_public_rsa,
    tpm2b,
    u16,
    u32,
)
from soapattest.tpm.public import TPM_ALG_MGF1, parse_public

AES128CFB = u16(TpmAlg.AES) + u16(128) + u16(TpmAlg.CFB)
NULL = u16(TpmAlg.NULL)
ECDSA256 = u16(TpmAlg.ECDSA) + u16(TpmAlg.SHA256)
RSASSA256 = u16(TpmAlg.RSASSA) + u16(TpmAlg.SHA256)


@pytest.fixture(scope="module")
def ec_pub() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


@pytest.fixture(scope="module")
def rsa_pub() -> rsa.RSAPublicKey:
    return rsa.generate_private_key(65537, 2048).public_key()


def _xy(key: ec.EllipticCurvePublicKey) -> tuple[bytes, bytes]:
    n = key.public_numbers()
    size = (key.curve.key_size + 7) // 8
    return n.x.to_bytes(size, "big"), n.y.to_bytes(size, "big")


def _ecc(
    key: ec.EllipticCurvePublicKey,
    *,
    typ: int = TpmAlg.ECC,
    name_alg: int = TpmAlg.SHA256,
    attrs: int = AK_ATTRIBUTES,
    policy: bytes = b"",
    sym: bytes = NULL,
    scheme: bytes = ECDSA256,
    curve: int = EccCurve.NIST_P256,
    kdf: bytes = NULL,
    unique: bytes | None = None,
) -> bytes:
    """TPMT_PUBLIC of an ECC key assembled from marshalled parts (so each can be broken)."""
    x, y = _xy(key)
    return (
        u16(typ)
        + u16(name_alg)
        + u32(attrs)
        + tpm2b(policy)
        + sym
        + scheme
        + u16(curve)
        + kdf
        + (tpm2b(x) + tpm2b(y) if unique is None else unique)
    )


def _rsa(
    key: rsa.RSAPublicKey,
    *,
    sym: bytes = NULL,
    scheme: bytes = RSASSA256,
    bits: int = 2048,
    exponent: int = 0,
    modulus: bytes | None = None,
) -> bytes:
    n = key.public_numbers().n.to_bytes(256, "big")
    return (
        u16(TpmAlg.RSA)
        + u16(TpmAlg.SHA256)
        + u32(AK_ATTRIBUTES)
        + tpm2b(b"")
        + sym
        + scheme
        + u16(bits)
        + u32(exponent)
        + tpm2b(n if modulus is None else modulus)
    )


# ---------------------------------------------------------------- positives


def test_ecc_ak_fields_name_and_key(ec_pub: ec.EllipticCurvePublicKey) -> None:
    data = build_public_ecc(ec_pub, AK_ATTRIBUTES)
    assert data == tpm2b(_ecc(ec_pub))
    p = parse_public(data)
    assert (p.type, p.name_alg, p.object_attributes) == (TpmAlg.ECC, TpmAlg.SHA256, AK_ATTRIBUTES)
    assert (p.scheme, p.scheme_hash, p.ecc_curve, p.kdf, p.symmetric) == (
        TpmAlg.ECDSA,
        TpmAlg.SHA256,
        EccCurve.NIST_P256,
        None,
        None,
    )
    assert p.unique == _xy(ec_pub)
    assert p.raw == data[2:]
    assert p.name() == b"\x00\x0b" + hashlib.sha256(data[2:]).digest()
    assert p.public_key() == ec_pub
    assert p.has_attributes(ObjectAttributes.RESTRICTED | ObjectAttributes.SIGN_ENCRYPT)
    assert not p.has_attributes(ObjectAttributes.DECRYPT)


def test_rsa_ak_fields_and_key(rsa_pub: rsa.RSAPublicKey) -> None:
    data = build_public_rsa(rsa_pub)
    assert data == tpm2b(_rsa(rsa_pub))
    p = parse_public(data)
    assert (p.type, p.rsa_bits, p.rsa_exponent, p.scheme, p.scheme_hash) == (
        TpmAlg.RSA,
        2048,
        0,
        TpmAlg.RSASSA,
        TpmAlg.SHA256,
    )
    key = p.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.public_numbers() == rsa_pub.public_numbers()


def test_rsa_explicit_exponent() -> None:
    key = rsa.generate_private_key(3, 2048).public_key()
    p = parse_public(build_public_rsa(key))
    assert p.rsa_exponent == 3
    assert p.public_key() == key


def test_unsized_tpmt_public(ec_pub: ec.EllipticCurvePublicKey) -> None:
    p = parse_public(_ecc(ec_pub), sized=False)
    assert p.raw == _ecc(ec_pub)
    assert p.name() == parse_public(tpm2b(_ecc(ec_pub))).name()


def test_tcg_rsa_ek_template_parses(rsa_pub: rsa.RSAPublicKey) -> None:
    data = build_public_rsa(
        rsa_pub,
        EK_ATTRIBUTES,
        scheme=TpmAlg.NULL,
        symmetric=(TpmAlg.AES, 128, TpmAlg.CFB),
        auth_policy=EK_POLICY_SHA256,
    )
    p = parse_public(data)
    assert p.symmetric == (TpmAlg.AES, 128, TpmAlg.CFB)
    assert (p.scheme, p.scheme_hash) == (TpmAlg.NULL, TpmAlg.NULL)
    assert p.auth_policy == EK_POLICY_SHA256


@pytest.mark.parametrize(
    ("curve", "curve_id"),
    [(ec.SECP384R1(), EccCurve.NIST_P384), (ec.SECP521R1(), EccCurve.NIST_P521)],
)
def test_larger_curves(curve: ec.EllipticCurve, curve_id: int) -> None:
    key = ec.generate_private_key(curve).public_key()
    p = parse_public(build_public_ecc(key, name_alg=TpmAlg.SHA384, scheme_hash=TpmAlg.SHA384))
    assert p.ecc_curve == curve_id
    assert p.public_key() == key


def test_ecc_with_kdf_and_ecdaa(ec_pub: ec.EllipticCurvePublicKey) -> None:
    kdf = u16(TpmAlg.KDF1_SP800_56A) + u16(TpmAlg.SHA256)
    ecdaa = u16(TpmAlg.ECDAA) + u16(TpmAlg.SHA256) + u16(7)
    p = parse_public(_ecc(ec_pub, scheme=ecdaa, kdf=kdf), sized=False)
    assert (p.kdf, p.scheme, p.ecdaa_count) == (
        (TpmAlg.KDF1_SP800_56A, TpmAlg.SHA256),
        TpmAlg.ECDAA,
        7,
    )
    assert parse_public(_ecc(ec_pub, kdf=u16(TPM_ALG_MGF1) + u16(TpmAlg.SHA1)), sized=False).kdf


def test_template_with_empty_unique_parses_but_has_no_key(
    ec_pub: ec.EllipticCurvePublicKey,
) -> None:
    p = parse_public(_ecc(ec_pub, unique=tpm2b(b"") + tpm2b(b"")), sized=False)
    assert p.unique == (b"", b"")
    with pytest.raises(InvalidPublicKeyError):
        p.public_key()


def test_keyedhash_parses_without_public_key() -> None:
    data = (
        u16(TpmAlg.KEYEDHASH)
        + u16(TpmAlg.SHA256)
        + u32(ObjectAttributes.SIGN_ENCRYPT | ObjectAttributes.USER_WITH_AUTH)
        + tpm2b(b"")
        + u16(TpmAlg.HMAC)
        + u16(TpmAlg.SHA256)
        + tpm2b(bytes(32))
    )
    p = parse_public(data, sized=False)
    assert (p.scheme, p.scheme_hash, p.unique) == (TpmAlg.HMAC, TpmAlg.SHA256, bytes(32))
    with pytest.raises(NoPublicKeyError):
        p.public_key()
    xor = (
        u16(TpmAlg.KEYEDHASH)
        + u16(TpmAlg.SHA256)
        + u32(0)
        + tpm2b(b"")
        + u16(TpmAlg.XOR)
        + u16(TpmAlg.SHA256)
        + u16(TpmAlg.KDF1_SP800_108)
        + tpm2b(b"")
    )
    assert parse_public(xor, sized=False).kdf == (TpmAlg.KDF1_SP800_108, TpmAlg.SHA256)
    with pytest.raises(UnknownAlgorithmError):
        parse_public(xor.replace(u16(TpmAlg.KDF1_SP800_108), u16(TpmAlg.NULL)), sized=False)


def test_symcipher_parses_and_needs_algorithm() -> None:
    head = u16(TpmAlg.SYMCIPHER) + u16(TpmAlg.SHA256) + u32(ObjectAttributes.DECRYPT) + tpm2b(b"")
    p = parse_public(head + AES128CFB + tpm2b(bytes(32)), sized=False)
    assert p.symmetric == (TpmAlg.AES, 128, TpmAlg.CFB)
    with pytest.raises(NoPublicKeyError):
        p.public_key()
    with pytest.raises(InvalidValueError):
        parse_public(head + NULL + tpm2b(bytes(32)), sized=False)


# ---------------------------------------------------------------- framing


def test_rejects_empty_tpm2b_public() -> None:
    with pytest.raises(InvalidValueError):
        parse_public(u16(0))


def test_rejects_tpm2b_size_past_buffer(ec_pub: ec.EllipticCurvePublicKey) -> None:
    data = tpm2b(_ecc(ec_pub))
    with pytest.raises(TruncatedError):
        parse_public(data[:-1])


def test_rejects_bytes_after_tpm2b(ec_pub: ec.EllipticCurvePublicKey) -> None:
    with pytest.raises(TrailingBytesError):
        parse_public(tpm2b(_ecc(ec_pub)) + b"\0")


def test_rejects_bytes_inside_tpm2b_after_tpmt(ec_pub: ec.EllipticCurvePublicKey) -> None:
    with pytest.raises(TrailingBytesError):
        parse_public(tpm2b(_ecc(ec_pub) + b"\0"))


def test_rejects_trailing_bytes_unsized(ec_pub: ec.EllipticCurvePublicKey) -> None:
    with pytest.raises(TrailingBytesError):
        parse_public(_ecc(ec_pub) + b"\0", sized=False)


def test_rejects_every_truncation(ec_pub: ec.EllipticCurvePublicKey) -> None:
    data = _ecc(ec_pub)
    for n in range(len(data)):
        with pytest.raises(TruncatedError):
            parse_public(data[:n], sized=False)


# ---------------------------------------------------------------- field checks


@pytest.mark.parametrize("typ", [TpmAlg.NULL, TpmAlg.AES, 0x1234])
def test_rejects_unknown_type(ec_pub: ec.EllipticCurvePublicKey, typ: int) -> None:
    with pytest.raises(UnknownAlgorithmError):
        parse_public(_ecc(ec_pub, typ=typ), sized=False)


@pytest.mark.parametrize("name_alg", [TpmAlg.NULL, TpmAlg.RSA, 0x00AB])
def test_rejects_bad_name_alg(ec_pub: ec.EllipticCurvePublicKey, name_alg: int) -> None:
    with pytest.raises(UnknownAlgorithmError):
        parse_public(_ecc(ec_pub, name_alg=name_alg), sized=False)


@pytest.mark.parametrize("bit", [0, 3, 8, 9, 12, 15, 20, 31])
def test_rejects_reserved_attribute_bits(ec_pub: ec.EllipticCurvePublicKey, bit: int) -> None:
    with pytest.raises(ReservedAttributeBitsError) as exc:
        parse_public(_ecc(ec_pub, attrs=AK_ATTRIBUTES | 1 << bit), sized=False)
    assert exc.value.bits == 1 << bit


@pytest.mark.parametrize("size", [1, 20, 48, 64, 65])
def test_rejects_auth_policy_not_name_alg_sized(
    ec_pub: ec.EllipticCurvePublicKey, size: int
) -> None:
    parse_public(_ecc(ec_pub, policy=bytes(32)), sized=False)
    with pytest.raises(InvalidValueError):
        parse_public(_ecc(ec_pub, policy=bytes(size)), sized=False)


@pytest.mark.parametrize(
    ("sym", "error"),
    [
        (u16(TpmAlg.XOR) + u16(128) + u16(TpmAlg.CFB), UnknownAlgorithmError),
        (u16(TpmAlg.AES) + u16(100) + u16(TpmAlg.CFB), InvalidValueError),
        (u16(TpmAlg.SM4) + u16(256) + u16(TpmAlg.CFB), InvalidValueError),
        (u16(TpmAlg.AES) + u16(128) + u16(TpmAlg.SHA256), UnknownAlgorithmError),
    ],
)
def test_rejects_bad_symmetric(
    ec_pub: ec.EllipticCurvePublicKey, sym: bytes, error: type[Exception]
) -> None:
    assert parse_public(_ecc(ec_pub, sym=AES128CFB), sized=False).symmetric
    with pytest.raises(error):
        parse_public(_ecc(ec_pub, sym=sym), sized=False)


@pytest.mark.parametrize(
    "scheme",
    [
        RSASSA256,  # an RSA scheme on an ECC key
        u16(TpmAlg.ECDSA) + u16(TpmAlg.NULL),  # TPMI_ALG_HASH has no NULL
        u16(TpmAlg.ECDSA) + u16(0x0099),
        u16(0x0099),
    ],
)
def test_rejects_bad_ecc_scheme(ec_pub: ec.EllipticCurvePublicKey, scheme: bytes) -> None:
    with pytest.raises(UnknownAlgorithmError):
        parse_public(_ecc(ec_pub, scheme=scheme), sized=False)


def test_rejects_ecc_scheme_on_rsa(rsa_pub: rsa.RSAPublicKey) -> None:
    parse_public(_rsa(rsa_pub, scheme=u16(TpmAlg.RSAES)), sized=False)
    with pytest.raises(UnknownAlgorithmError):
        parse_public(_rsa(rsa_pub, scheme=ECDSA256), sized=False)


@pytest.mark.parametrize("curve", [EccCurve.BN_P256, EccCurve.NIST_P224, EccCurve.SM2_P256, 0x99])
def test_rejects_unsupported_curve(ec_pub: ec.EllipticCurvePublicKey, curve: int) -> None:
    with pytest.raises(UnsupportedCurveError) as exc:
        parse_public(_ecc(ec_pub, curve=curve), sized=False)
    assert exc.value.curve == curve


@pytest.mark.parametrize("kdf", [u16(TpmAlg.SHA256) + u16(TpmAlg.SHA256), u16(TpmAlg.KDF2) + NULL])
def test_rejects_bad_kdf(ec_pub: ec.EllipticCurvePublicKey, kdf: bytes) -> None:
    with pytest.raises(UnknownAlgorithmError):
        parse_public(_ecc(ec_pub, kdf=kdf), sized=False)


def test_rejects_oversize_coordinate(ec_pub: ec.EllipticCurvePublicKey) -> None:
    x, y = _xy(ec_pub)
    with pytest.raises(InvalidValueError):
        parse_public(_ecc(ec_pub, unique=tpm2b(b"\0" + x) + tpm2b(y)), sized=False)


def test_short_coordinates_are_padded(ec_pub: ec.EllipticCurvePublicKey) -> None:
    x, y = _xy(ec_pub)
    short = tpm2b(x.lstrip(b"\0") or b"\0") + tpm2b(y.lstrip(b"\0") or b"\0")
    assert parse_public(_ecc(ec_pub, unique=short), sized=False).public_key() == ec_pub


def test_rejects_point_off_curve(ec_pub: ec.EllipticCurvePublicKey) -> None:
    x, y = _xy(ec_pub)
    bad_y = (int.from_bytes(y, "big") ^ 1).to_bytes(32, "big")
    p = parse_public(_ecc(ec_pub, unique=tpm2b(x) + tpm2b(bad_y)), sized=False)
    with pytest.raises(InvalidPublicKeyError):
        p.public_key()


@pytest.mark.parametrize("bits", [0, 512, 2047, 8192])
def test_rejects_bad_rsa_key_bits(rsa_pub: rsa.RSAPublicKey, bits: int) -> None:
    with pytest.raises(InvalidValueError):
        parse_public(_rsa(rsa_pub, bits=bits, modulus=b""), sized=False)


@pytest.mark.parametrize("exponent", [1, 2, 65536])
def test_rejects_bad_rsa_exponent(rsa_pub: rsa.RSAPublicKey, exponent: int) -> None:
    with pytest.raises(InvalidValueError):
        parse_public(_rsa(rsa_pub, exponent=exponent), sized=False)


def test_rejects_modulus_length_not_key_bits(rsa_pub: rsa.RSAPublicKey) -> None:
    n = rsa_pub.public_numbers().n.to_bytes(256, "big")
    with pytest.raises(InvalidValueError):
        parse_public(_rsa(rsa_pub, modulus=n[1:]), sized=False)


def test_rejects_modulus_without_top_bit(rsa_pub: rsa.RSAPublicKey) -> None:
    p = parse_public(_rsa(rsa_pub, modulus=b"\x01" * 256), sized=False)
    with pytest.raises(InvalidPublicKeyError):
        p.public_key()


def test_rejects_oversize_modulus(rsa_pub: rsa.RSAPublicKey) -> None:
    with pytest.raises(InvalidValueError):
        parse_public(_rsa(rsa_pub, bits=4096, modulus=b"\x80" * 513), sized=False)


def test_public_key_der_is_stable(rsa_pub: rsa.RSAPublicKey) -> None:
    key = parse_public(build_public_rsa(rsa_pub)).public_key()
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert key.public_bytes(der, fmt) == rsa_pub.public_bytes(der, fmt)
