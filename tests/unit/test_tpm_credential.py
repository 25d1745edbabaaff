"""MakeCredential (soapattest.tpm.credential) against a software ActivateCredential.

The software activation below follows TPM 2.0 Part 1, 24 from the EK's
private key; the KDFs are cross-checked against cryptography's SP 800-108 and
SP 800-56A implementations. The real TPM round trip is in
tests/integration/test_tpm_differential.py.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFHMAC, CounterLocation, Mode

from soapattest.errors import CredentialError
from soapattest.tpm.constants import TpmAlg
from soapattest.tpm.credential import (
    IDENTITY_LABEL,
    INTEGRITY_LABEL,
    STORAGE_LABEL,
    kdfa,
    kdfe,
    make_credential,
)
from soapattest.tpm.marshal import (
    AK_ATTRIBUTES,
    EK_ATTRIBUTES,
    EK_POLICY_SHA256,
    build_public_ecc,
    build_public_rsa,
    tpm2b,
    u16,
)
from soapattest.tpm.public import TpmPublic, parse_public

AES128CFB = (TpmAlg.AES, 128, TpmAlg.CFB)
SECRET = bytes(range(32))
NAME = b"\x00\x0b" + hashlib.sha256(b"the AK").digest()
_HASHLIB: dict[int, str] = {TpmAlg.SHA256: "sha256", TpmAlg.SHA384: "sha384"}


def _rng(seed: int) -> Callable[[int], bytes]:
    gen = random.Random(seed)
    return gen.randbytes


@pytest.fixture(scope="module")
def rsa_ek() -> tuple[rsa.RSAPrivateKey, TpmPublic]:
    key = rsa.generate_private_key(65537, 2048)
    pub = build_public_rsa(
        key.public_key(),
        EK_ATTRIBUTES,
        scheme=TpmAlg.NULL,
        symmetric=AES128CFB,
        auth_policy=EK_POLICY_SHA256,
    )
    return key, parse_public(pub)


@pytest.fixture(scope="module")
def ecc_ek() -> tuple[ec.EllipticCurvePrivateKey, TpmPublic]:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = build_public_ecc(
        key.public_key(),
        EK_ATTRIBUTES,
        scheme=TpmAlg.NULL,
        symmetric=AES128CFB,
        auth_policy=EK_POLICY_SHA256,
    )
    return key, parse_public(pub)


def _read_tpm2b(data: bytes) -> tuple[bytes, bytes]:
    (size,) = struct.unpack(">H", data[:2])
    return data[2 : 2 + size], data[2 + size :]


def software_activate(
    ek_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    ek: TpmPublic,
    name: bytes,
    id_object: bytes,
    secret: bytes,
) -> bytes:
    """TPM2_ActivateCredential in software; raises ValueError on an integrity failure."""
    name_alg = ek.name_alg
    h = _HASHLIB[name_alg]
    size = hashlib.new(h).digest_size
    enc_secret, rest = _read_tpm2b(secret)
    assert rest == b""
    if isinstance(ek_key, rsa.RSAPrivateKey):
        hh = hashes.SHA256() if name_alg == TpmAlg.SHA256 else hashes.SHA384()
        pad = padding.OAEP(mgf=padding.MGF1(hh), algorithm=hh, label=IDENTITY_LABEL)
        seed = ek_key.decrypt(enc_secret, pad)
    else:
        qx, rest = _read_tpm2b(enc_secret)
        qy, rest = _read_tpm2b(rest)
        assert rest == b""
        point = ec.EllipticCurvePublicKey.from_encoded_point(ek_key.curve, b"\x04" + qx + qy)
        z = ek_key.exchange(ec.ECDH(), point)
        assert isinstance(ek.unique, tuple)
        seed = kdfe(name_alg, z, IDENTITY_LABEL, qx, ek.unique[0], size * 8)
    blob, rest = _read_tpm2b(id_object)
    assert rest == b""
    integrity, enc_identity = _read_tpm2b(blob)
    hmac_key = kdfa(name_alg, seed, INTEGRITY_LABEL, b"", b"", size * 8)
    expected = hmac.new(hmac_key, enc_identity + name, h).digest()
    if not hmac.compare_digest(integrity, expected):
        raise ValueError("integrity check failed")
    assert ek.symmetric is not None
    sym_key = kdfa(name_alg, seed, STORAGE_LABEL, name, b"", ek.symmetric[1])
    dec = Cipher(algorithms.AES(sym_key), CFB(b"\0" * 16)).decryptor()
    plain = dec.update(enc_identity) + dec.finalize()
    cred, rest = _read_tpm2b(plain)
    assert rest == b""
    return cred


# ---------------------------------------------------------------- KDFs


@pytest.mark.parametrize("bits", [128, 256, 384, 520])
def test_kdfa_matches_sp800_108_counter_mode(bits: int) -> None:
    key, ctx_u, ctx_v = b"k" * 32, b"name", b"other"
    ours = kdfa(TpmAlg.SHA256, key, b"STORAGE", ctx_u, ctx_v, bits)
    reference = KBKDFHMAC(
        algorithm=hashes.SHA256(),
        mode=Mode.CounterMode,
        length=bits // 8,
        rlen=4,
        llen=4,
        location=CounterLocation.BeforeFixed,
        label=b"STORAGE",
        context=ctx_u + ctx_v,
        fixed=None,
    ).derive(key)
    assert ours == reference
    assert kdfa(TpmAlg.SHA256, key, STORAGE_LABEL, ctx_u, ctx_v, bits) == reference


def test_kdfa_masks_partial_octet() -> None:
    out = kdfa(TpmAlg.SHA256, b"k", b"L", b"", b"", 12)
    assert len(out) == 2 and out[0] < 0x10


@pytest.mark.parametrize("bits", [256, 384, 768])
def test_kdfe_matches_sp800_56a_concat_kdf(bits: int) -> None:
    z, u, v = b"z" * 32, b"u" * 32, b"v" * 32
    reference = ConcatKDFHash(
        algorithm=hashes.SHA256(), length=bits // 8, otherinfo=IDENTITY_LABEL + u + v
    ).derive(z)
    assert kdfe(TpmAlg.SHA256, z, b"IDENTITY", u, v, bits) == reference


# ---------------------------------------------------------------- round trips


def test_rsa_ek_round_trip(rsa_ek: tuple[rsa.RSAPrivateKey, TpmPublic]) -> None:
    key, ek = rsa_ek
    blob, secret = make_credential(ek, NAME, SECRET, random_bytes=_rng(1))
    assert len(secret) == 2 + 256
    assert software_activate(key, ek, NAME, blob, secret) == SECRET


def test_ecc_ek_round_trip_and_determinism(
    ecc_ek: tuple[ec.EllipticCurvePrivateKey, TpmPublic],
) -> None:
    key, ek = ecc_ek
    first = make_credential(ek, NAME, SECRET, random_bytes=_rng(2))
    assert software_activate(key, ek, NAME, *first) == SECRET
    assert make_credential(ek, NAME, SECRET, random_bytes=_rng(2)) == first
    assert make_credential(ek, NAME, SECRET, random_bytes=_rng(3)) != first


def test_p384_sha384_ek_round_trip() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    ek = parse_public(
        build_public_ecc(
            key.public_key(),
            EK_ATTRIBUTES,
            name_alg=TpmAlg.SHA384,
            scheme=TpmAlg.NULL,
            symmetric=(TpmAlg.AES, 256, TpmAlg.CFB),
        )
    )
    name = b"\x00\x0c" + hashlib.sha384(b"ak").digest()
    blob, secret = make_credential(ek, name, b"s" * 48, random_bytes=_rng(4))
    assert software_activate(key, ek, name, blob, secret) == b"s" * 48
    with pytest.raises(ValueError):
        software_activate(key, ek, name + b"x", blob, secret)


def test_wrong_name_fails_integrity(rsa_ek: tuple[rsa.RSAPrivateKey, TpmPublic]) -> None:
    key, ek = rsa_ek
    blob, secret = make_credential(ek, NAME, SECRET, random_bytes=_rng(5))
    other = NAME[:-1] + bytes([NAME[-1] ^ 1])
    with pytest.raises(ValueError):
        software_activate(key, ek, other, blob, secret)


def test_short_credential(ecc_ek: tuple[ec.EllipticCurvePrivateKey, TpmPublic]) -> None:
    key, ek = ecc_ek
    assert (
        software_activate(key, ek, NAME, *make_credential(ek, NAME, b"x", random_bytes=_rng(6)))
        == b"x"
    )


# ---------------------------------------------------------------- refusals


def test_rejects_signing_key_as_ek(ecc_ek: tuple[ec.EllipticCurvePrivateKey, TpmPublic]) -> None:
    key, _ = ecc_ek
    ak = parse_public(build_public_ecc(key.public_key(), AK_ATTRIBUTES))
    with pytest.raises(CredentialError):
        make_credential(ak, NAME, SECRET, random_bytes=_rng(7))


def test_rejects_unrestricted_decrypt_key(rsa_ek: tuple[rsa.RSAPrivateKey, TpmPublic]) -> None:
    key, _ = rsa_ek
    pub = build_public_rsa(
        key.public_key(),
        EK_ATTRIBUTES & ~0x10000,
        scheme=TpmAlg.NULL,
        symmetric=AES128CFB,
    )
    with pytest.raises(CredentialError):
        make_credential(parse_public(pub), NAME, SECRET, random_bytes=_rng(8))


def test_rejects_ek_without_symmetric(rsa_ek: tuple[rsa.RSAPrivateKey, TpmPublic]) -> None:
    key, _ = rsa_ek
    pub = build_public_rsa(key.public_key(), EK_ATTRIBUTES, scheme=TpmAlg.NULL)
    with pytest.raises(CredentialError):
        make_credential(parse_public(pub), NAME, SECRET, random_bytes=_rng(9))


def test_rejects_small_rsa_ek() -> None:
    key = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the refused case
    pub = build_public_rsa(key.public_key(), EK_ATTRIBUTES, scheme=TpmAlg.NULL, symmetric=AES128CFB)
    with pytest.raises(CredentialError):
        make_credential(parse_public(pub), NAME, SECRET, random_bytes=_rng(10))


def test_rejects_ek_point_off_curve(ecc_ek: tuple[ec.EllipticCurvePrivateKey, TpmPublic]) -> None:
    _, ek = ecc_ek
    assert isinstance(ek.unique, tuple)
    x, y = ek.unique
    bad = ek.raw[: -len(tpm2b(x) + tpm2b(y))] + tpm2b(x) + tpm2b(bytes(31) + b"\x01")
    with pytest.raises(CredentialError):
        make_credential(parse_public(bad, sized=False), NAME, SECRET, random_bytes=_rng(11))


def test_rejects_symcipher_object() -> None:
    head = u16(TpmAlg.SYMCIPHER) + u16(TpmAlg.SHA256) + struct.pack(">I", EK_ATTRIBUTES)
    sym = parse_public(
        head + tpm2b(b"") + u16(TpmAlg.AES) + u16(128) + u16(TpmAlg.CFB) + tpm2b(b""), sized=False
    )
    with pytest.raises(CredentialError):
        make_credential(sym, NAME, SECRET, random_bytes=_rng(12))


@pytest.mark.parametrize(
    "name",
    [
        b"",
        b"\x00\x0b",
        NAME[:-1],
        NAME + b"\0",
        b"\x00\x10" + bytes(32),  # TPM_ALG_NULL
        b"\x40\x00\x00\x01",  # a handle: no object name
    ],
)
def test_rejects_bad_object_name(rsa_ek: tuple[rsa.RSAPrivateKey, TpmPublic], name: bytes) -> None:
    with pytest.raises(CredentialError):
        make_credential(rsa_ek[1], name, SECRET, random_bytes=_rng(13))


@pytest.mark.parametrize("credential", [b"", bytes(33)])
def test_rejects_credential_size(
    rsa_ek: tuple[rsa.RSAPrivateKey, TpmPublic], credential: bytes
) -> None:
    with pytest.raises(CredentialError):
        make_credential(rsa_ek[1], NAME, credential, random_bytes=_rng(14))


def test_rejects_short_random_source(rsa_ek: tuple[rsa.RSAPrivateKey, TpmPublic]) -> None:
    make_credential(rsa_ek[1], NAME, SECRET, random_bytes=os.urandom)
    with pytest.raises(CredentialError):
        make_credential(rsa_ek[1], NAME, SECRET, random_bytes=lambda n: bytes(n - 1))
