"""TPMT_SIGNATURE parsing (Part 2, 11.3.4) and signature verification.

Only the schemes an attestation key may use here are accepted: RSASSA
(PKCS#1 v1.5), RSAPSS and ECDSA. The scheme and hash a signature *must* use
come from the AK's template (its TPMT_PUBLIC), never from the signature
itself: :func:`verify_signature` takes them as ``expected_*`` arguments.

RSAPSS salt length: the TCG reference implementation (and libtpms/swtpm)
uses a salt as long as the digest, limited by the room the modulus leaves
(FIPS 186-4); TPMs built on older revisions use the largest salt that fits.
Verification therefore uses ``PSS.AUTO`` (salt length recovered from the
signature), as go-tpm does; PSS unforgeability does not depend on the salt
length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from soapattest.errors import (
    NullSignatureError,
    SignatureInvalidError,
    SignatureSchemeError,
    UnknownAlgorithmError,
    WeakKeyError,
)
from soapattest.tpm.constants import HASH_ALGORITHMS, TpmAlg
from soapattest.tpm.reader import Reader

RSA_SIGNATURE_MAX = 512  # TPM2B_PUBLIC_KEY_RSA: MAX_RSA_KEY_BYTES for RSA-4096
ECC_PARAMETER_MAX = 66  # TPM2B_ECC_PARAMETER: P-521 is the largest curve accepted
RSA_MIN_BITS = 2048

_STRUCT = "TPMT_SIGNATURE"
_ECDSA_ID = int(TpmAlg.ECDSA)
_new = object.__new__
_set = object.__setattr__

SIGNATURE_ALGS = frozenset({TpmAlg.RSASSA, TpmAlg.RSAPSS, TpmAlg.ECDSA})

# Hashes accepted for signatures: SHA-1 is refused (collisions), SM3 unsupported.
_HASHES: dict[int, hashes.HashAlgorithm] = {
    TpmAlg.SHA256: hashes.SHA256(),
    TpmAlg.SHA384: hashes.SHA384(),
    TpmAlg.SHA512: hashes.SHA512(),
}
_ECDSA = {alg: ec.ECDSA(h) for alg, h in _HASHES.items()}
_PSS = {
    alg: padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.AUTO)
    for alg, h in _HASHES.items()
}
_PKCS1 = padding.PKCS1v15()
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_KIND_BY_SCHEME = {int(TpmAlg.RSASSA): "rsa", int(TpmAlg.RSAPSS): "rsa", int(TpmAlg.ECDSA): "ec"}
_KIND_BY_TYPE: dict[type, str] = {}


@dataclass(frozen=True)
class Signature:
    """A parsed TPMT_SIGNATURE.

    RSA schemes set ``rsa_signature``; ECDSA sets ``ecdsa_r``/``ecdsa_s``
    (big-endian integers of the TPM2B_ECC_PARAMETERs). ``raw`` is the exact
    buffer parsed.
    """

    sig_alg: int
    hash_alg: int
    rsa_signature: bytes | None
    ecdsa_r: int | None
    ecdsa_s: int | None
    raw: bytes


def parse_signature(data: bytes) -> Signature:
    """Parse a whole buffer as one TPMT_SIGNATURE.

    Accepted: sigAlg RSASSA/RSAPSS (hash, TPM2B_PUBLIC_KEY_RSA <= 512 bytes)
    or ECDSA (hash, two TPM2B_ECC_PARAMETER <= 66 bytes); the hash must be a
    known TPM hash (checked for strength at verification).

    Raises :class:`NullSignatureError` (sigAlg TPM_ALG_NULL),
    :class:`UnknownAlgorithmError` (any other scheme, unknown hash),
    :class:`TruncatedError`, :class:`TrailingBytesError`,
    :class:`InvalidValueError` (oversize TPM2B).
    """
    raw = bytes(data)
    r = Reader(raw, _STRUCT)
    sig_alg = r.u16("TPMT_SIGNATURE.sigAlg")
    if sig_alg not in SIGNATURE_ALGS:
        if sig_alg == TpmAlg.NULL:
            raise NullSignatureError(
                "sigAlg is TPM_ALG_NULL: no signature", alg=sig_alg, structure=_STRUCT, offset=0
            )
        raise UnknownAlgorithmError(
            f"signature scheme 0x{sig_alg:04x} not accepted",
            alg=sig_alg,
            structure=_STRUCT,
            offset=0,
        )
    hash_alg = r.u16("TPMS_SIGNATURE.hash")
    if hash_alg not in HASH_ALGORITHMS:
        raise UnknownAlgorithmError(
            f"signature hash 0x{hash_alg:04x} unknown", alg=hash_alg, structure=_STRUCT, offset=2
        )
    rsa_sig = ecdsa_r = ecdsa_s = None
    if sig_alg == _ECDSA_ID:
        rb = r.tpm2b("TPMS_SIGNATURE_ECC.signatureR", max_size=ECC_PARAMETER_MAX)
        sb = r.tpm2b("TPMS_SIGNATURE_ECC.signatureS", max_size=ECC_PARAMETER_MAX)
        ecdsa_r, ecdsa_s = int.from_bytes(rb, "big"), int.from_bytes(sb, "big")
    else:
        rsa_sig = r.tpm2b("TPMS_SIGNATURE_RSA.sig", max_size=RSA_SIGNATURE_MAX)
    r.done()
    # Hot path: built without the generated frozen __init__ (see soapattest.tpm.attest).
    obj = _new(Signature)
    _set(
        obj,
        "__dict__",
        {
            "sig_alg": sig_alg,
            "hash_alg": hash_alg,
            "rsa_signature": rsa_sig,
            "ecdsa_r": ecdsa_r,
            "ecdsa_s": ecdsa_s,
            "raw": raw,
        },
    )
    return obj


def _key_kind(key: object) -> str:
    """``"rsa"``, ``"ec"`` or ``"other"``; cached by concrete type (ABC checks are slow)."""
    kind = _KIND_BY_TYPE.get(type(key))
    if kind is None:
        if isinstance(key, RSAPublicKey):
            kind = "rsa"
        elif isinstance(key, ec.EllipticCurvePublicKey):
            kind = "ec"
        else:
            kind = "other"
        _KIND_BY_TYPE[type(key)] = kind
    return kind


def check_key_strength(key: RSAPublicKey | ec.EllipticCurvePublicKey) -> None:
    """Raise :class:`WeakKeyError` unless ``key`` is RSA >= 2048 bits or NIST P-256/384/521."""
    kind = _key_kind(key)
    if kind == "rsa":
        bits = cast(RSAPublicKey, key).key_size
        if bits < RSA_MIN_BITS:
            raise WeakKeyError(f"RSA key of {bits} bits, at least {RSA_MIN_BITS} needed")
    elif kind == "ec":
        curve = cast(ec.EllipticCurvePublicKey, key).curve
        if not isinstance(curve, _CURVES):
            raise WeakKeyError(f"curve {curve.name} not accepted")
    else:
        raise WeakKeyError(f"key type {type(key).__name__} not accepted")


def verify_signature(
    key: RSAPublicKey | ec.EllipticCurvePublicKey,
    sig: Signature,
    message: bytes,
    *,
    expected_sig_alg: int,
    expected_hash_alg: int,
) -> None:
    """Verify ``sig`` over ``message`` (the TPMS_ATTEST bytes) with the AK ``key``.

    Steps (Part 1, 11.2 and Part 3, 18.4 TPM2_Quote "signature"):

    1. the signature's scheme and hash equal ``expected_sig_alg`` /
       ``expected_hash_alg`` (from the AK's template) - else
       :class:`SignatureSchemeError`;
    2. the key kind fits the scheme (RSA for RSASSA/RSAPSS, EC for ECDSA) -
       else :class:`SignatureSchemeError`;
    3. the hash is SHA-256/384/512 and the key is RSA >= 2048 bits or a NIST
       P-256/384/521 key - else :class:`WeakKeyError`;
    4. the signature verifies over ``H(message)`` - else
       :class:`SignatureInvalidError`.

    Returns ``None`` on success.
    """
    # 1. Scheme and hash fixed by the AK template.
    if sig.sig_alg != expected_sig_alg or sig.hash_alg != expected_hash_alg:
        raise SignatureSchemeError(
            f"signature uses scheme 0x{sig.sig_alg:04x}/hash 0x{sig.hash_alg:04x}, the AK "
            f"requires 0x{expected_sig_alg:04x}/0x{expected_hash_alg:04x}"
        )
    # 2. Key kind matches the scheme.
    kind = _key_kind(key)
    wanted = _KIND_BY_SCHEME.get(expected_sig_alg)
    if wanted is None:
        raise SignatureSchemeError(f"signature scheme 0x{expected_sig_alg:04x} not accepted")
    if kind != wanted:
        raise SignatureSchemeError(
            f"signature scheme 0x{expected_sig_alg:04x} needs an {wanted} key, the AK is {kind}"
        )
    # 3. Strength of hash and key.
    h = _HASHES.get(expected_hash_alg)
    if h is None:
        raise WeakKeyError(f"signature hash 0x{expected_hash_alg:04x} not accepted")
    if kind == "rsa":
        if cast(RSAPublicKey, key).key_size < RSA_MIN_BITS:
            check_key_strength(key)  # raises with the details
    elif not isinstance(cast(ec.EllipticCurvePublicKey, key).curve, _CURVES):
        check_key_strength(key)
    # 4. The signature itself.
    try:
        if kind == "ec":
            if sig.ecdsa_r is None or sig.ecdsa_s is None:
                raise SignatureInvalidError("ECDSA signature without r/s")
            der = encode_dss_signature(sig.ecdsa_r, sig.ecdsa_s)
            cast(ec.EllipticCurvePublicKey, key).verify(der, message, _ECDSA[expected_hash_alg])
        else:
            if sig.rsa_signature is None:
                raise SignatureInvalidError("RSA signature without signature bytes")
            pad = _PKCS1 if expected_sig_alg == TpmAlg.RSASSA else _PSS[expected_hash_alg]
            cast(RSAPublicKey, key).verify(sig.rsa_signature, message, pad, h)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureInvalidError("signature does not verify with the AK") from exc
