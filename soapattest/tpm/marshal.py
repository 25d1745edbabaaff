"""Writers for the TPM structures soapattest parses: TPMS_ATTEST, TPMT_SIGNATURE, TPMT_PUBLIC.

A TPM produces these structures; soapattest only builds them for tests,
benchmarks, simulators and adversarial inputs (quotes signed by software
keys). The writers marshal exactly what they are given - they do not
validate, so they can build hostile structures too; the parsers are what
checks.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from soapattest.tpm.attest import (
    Attest,
    AttestedInfo,
    CertifyInfo,
    ClockInfo,
    CommandAuditInfo,
    CreationInfo,
    NvCertifyInfo,
    NvDigestCertifyInfo,
    QuoteInfo,
    SessionAuditInfo,
    TimeAttestInfo,
)
from soapattest.tpm.constants import TPM_GENERATED_VALUE, EccCurve, ObjectAttributes, TpmAlg, TpmSt
from soapattest.tpm.pcr import PcrSelection
from soapattest.tpm.public import TpmPublic

# objectAttributes of an attestation key (restricted signing key, TCG AK profile).
AK_ATTRIBUTES = (
    ObjectAttributes.FIXED_TPM
    | ObjectAttributes.FIXED_PARENT
    | ObjectAttributes.SENSITIVE_DATA_ORIGIN
    | ObjectAttributes.USER_WITH_AUTH
    | ObjectAttributes.RESTRICTED
    | ObjectAttributes.SIGN_ENCRYPT
)
# objectAttributes of a TCG default EK (EK Credential Profile, template L-1 / L-2).
EK_ATTRIBUTES = (
    ObjectAttributes.FIXED_TPM
    | ObjectAttributes.FIXED_PARENT
    | ObjectAttributes.SENSITIVE_DATA_ORIGIN
    | ObjectAttributes.ADMIN_WITH_POLICY
    | ObjectAttributes.RESTRICTED
    | ObjectAttributes.DECRYPT
)
# authPolicy of the TCG default EK templates: PolicySecret(TPM_RH_ENDORSEMENT), SHA-256.
EK_POLICY_SHA256 = bytes.fromhex("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")

_CURVE_IDS: dict[str, int] = {
    "secp256r1": EccCurve.NIST_P256,
    "secp384r1": EccCurve.NIST_P384,
    "secp521r1": EccCurve.NIST_P521,
}
_HASHES: dict[int, hashes.HashAlgorithm] = {
    TpmAlg.SHA1: hashes.SHA1(),  # noqa: S303 - only to build test structures
    TpmAlg.SHA256: hashes.SHA256(),
    TpmAlg.SHA384: hashes.SHA384(),
    TpmAlg.SHA512: hashes.SHA512(),
}


def u8(v: int) -> bytes:
    """UINT8."""
    return struct.pack(">B", v)


def u16(v: int) -> bytes:
    """UINT16 big-endian."""
    return struct.pack(">H", v)


def u32(v: int) -> bytes:
    """UINT32 big-endian."""
    return struct.pack(">I", v)


def u64(v: int) -> bytes:
    """UINT64 big-endian."""
    return struct.pack(">Q", v)


def tpm2b(data: bytes) -> bytes:
    """A TPM2B: UINT16 size || data."""
    return u16(len(data)) + data


def _clock(c: ClockInfo) -> bytes:
    return u64(c.clock) + u32(c.reset_count) + u32(c.restart_count) + u8(int(c.safe))


def _body(info: AttestedInfo) -> tuple[int, bytes]:
    """The TPM_ST type and marshalled TPMU_ATTEST member for ``info``."""
    if isinstance(info, QuoteInfo):
        return TpmSt.ATTEST_QUOTE, info.pcr_select.to_bytes() + tpm2b(info.pcr_digest)
    if isinstance(info, CertifyInfo):
        return TpmSt.ATTEST_CERTIFY, tpm2b(info.name) + tpm2b(info.qualified_name)
    if isinstance(info, CreationInfo):
        return TpmSt.ATTEST_CREATION, tpm2b(info.object_name) + tpm2b(info.creation_hash)
    if isinstance(info, CommandAuditInfo):
        return TpmSt.ATTEST_COMMAND_AUDIT, (
            u64(info.audit_counter)
            + u16(info.digest_alg)
            + tpm2b(info.audit_digest)
            + tpm2b(info.command_digest)
        )
    if isinstance(info, SessionAuditInfo):
        return TpmSt.ATTEST_SESSION_AUDIT, u8(int(info.exclusive_session)) + tpm2b(
            info.session_digest
        )
    if isinstance(info, TimeAttestInfo):
        return TpmSt.ATTEST_TIME, (
            u64(info.time) + _clock(info.clock_info) + u64(info.firmware_version)
        )
    if isinstance(info, NvCertifyInfo):
        return TpmSt.ATTEST_NV, tpm2b(info.index_name) + u16(info.offset) + tpm2b(info.nv_contents)
    if isinstance(info, NvDigestCertifyInfo):
        return TpmSt.ATTEST_NV_DIGEST, tpm2b(info.index_name) + tpm2b(info.nv_digest)
    raise TypeError(f"not a TPMU_ATTEST member: {type(info).__name__}")


def build_attest(
    *,
    attested: AttestedInfo,
    extra_data: bytes = b"",
    qualified_signer: bytes = b"",
    clock_info: ClockInfo | None = None,
    firmware_version: int = 0,
    magic: int = TPM_GENERATED_VALUE,
    attest_type: int | None = None,
) -> bytes:
    """Marshal a TPMS_ATTEST.

    The type follows ``attested`` (QuoteInfo -> TPM_ST_ATTEST_QUOTE, ...)
    unless ``attest_type`` overrides it (to build mismatched structures).
    ``clock_info`` defaults to ``ClockInfo(0, 0, 0, True)``.
    """
    st, body = _body(attested)
    clock = clock_info if clock_info is not None else ClockInfo(0, 0, 0, True)
    return (
        u32(magic)
        + u16(st if attest_type is None else attest_type)
        + tpm2b(qualified_signer)
        + tpm2b(extra_data)
        + _clock(clock)
        + u64(firmware_version)
        + body
    )


def build_quote(
    *,
    pcr_select: PcrSelection,
    pcr_digest: bytes,
    extra_data: bytes,
    qualified_signer: bytes = b"",
    clock_info: ClockInfo | None = None,
    firmware_version: int = 0,
    magic: int = TPM_GENERATED_VALUE,
) -> bytes:
    """Marshal a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE."""
    return build_attest(
        attested=QuoteInfo(pcr_select, pcr_digest),
        extra_data=extra_data,
        qualified_signer=qualified_signer,
        clock_info=clock_info,
        firmware_version=firmware_version,
        magic=magic,
    )


def attest_to_bytes(a: Attest) -> bytes:
    """Re-marshal a parsed :class:`Attest` (its PCR selection with sizeofSelect 3)."""
    if a.attested is None:
        raise ValueError("Attest without a body")
    return build_attest(
        attested=a.attested,
        extra_data=a.extra_data,
        qualified_signer=a.qualified_signer,
        clock_info=a.clock_info,
        firmware_version=a.firmware_version,
        magic=a.magic,
        attest_type=a.type,
    )


def _int_bytes(v: int, size: int | None) -> bytes:
    n = max(1, (v.bit_length() + 7) // 8) if size is None else size
    return v.to_bytes(n, "big")


def build_signature_ecdsa(r: int, s: int, hash_alg: int, *, size: int | None = None) -> bytes:
    """Marshal a TPMT_SIGNATURE with ECDSA; ``size`` pads r and s (default: minimal)."""
    return (
        u16(TpmAlg.ECDSA) + u16(hash_alg) + tpm2b(_int_bytes(r, size)) + tpm2b(_int_bytes(s, size))
    )


def build_signature_rsa(signature: bytes, hash_alg: int, *, sig_alg: int = TpmAlg.RSASSA) -> bytes:
    """Marshal a TPMT_SIGNATURE with RSASSA (default) or RSAPSS."""
    return u16(sig_alg) + u16(hash_alg) + tpm2b(signature)


def sign_ecdsa(key: ec.EllipticCurvePrivateKey, message: bytes, hash_alg: int) -> bytes:
    """Sign ``message`` like a TPM ECDSA key and return the TPMT_SIGNATURE bytes."""
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(_HASHES[hash_alg])))
    return build_signature_ecdsa(r, s, hash_alg, size=(key.curve.key_size + 7) // 8)


def sign_rsa(
    key: rsa.RSAPrivateKey, message: bytes, hash_alg: int, *, sig_alg: int = TpmAlg.RSASSA
) -> bytes:
    """Sign ``message`` like a TPM RSA key (PSS salt = digest length) -> TPMT_SIGNATURE bytes."""
    h = _HASHES[hash_alg]
    pad: padding.AsymmetricPadding
    if sig_alg == TpmAlg.RSAPSS:
        pad = padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH)
    else:
        pad = padding.PKCS1v15()
    return build_signature_rsa(key.sign(message, pad, h), hash_alg, sig_alg=sig_alg)


def _sym(symmetric: tuple[int, int, int] | None) -> bytes:
    if symmetric is None:
        return u16(TpmAlg.NULL)
    alg, bits, mode = symmetric
    return u16(alg) + u16(bits) + u16(mode)


def public_to_bytes(p: TpmPublic, *, sized: bool = True) -> bytes:
    """Marshal the fields of ``p`` as TPMT_PUBLIC, wrapped in TPM2B_PUBLIC when ``sized``.

    ``p.raw`` is ignored: this writes the fields (round-trip tests compare).
    """
    out = [u16(p.type), u16(p.name_alg), u32(p.object_attributes), tpm2b(p.auth_policy)]
    if p.type != TpmAlg.KEYEDHASH:
        out.append(_sym(p.symmetric))
    if p.type != TpmAlg.SYMCIPHER:
        out.append(u16(p.scheme))
        if p.scheme != TpmAlg.NULL:
            if p.scheme != TpmAlg.RSAES:
                out.append(u16(p.scheme_hash))
            if p.scheme == TpmAlg.ECDAA:
                out.append(u16(p.ecdaa_count or 0))
            if p.scheme == TpmAlg.XOR and p.kdf is not None:
                out.append(u16(p.kdf[0]))
    if p.type == TpmAlg.RSA:
        out.append(u16(p.rsa_bits or 0) + u32(p.rsa_exponent or 0))
    elif p.type == TpmAlg.ECC:
        out.append(u16(p.ecc_curve or 0))
        out.append(u16(TpmAlg.NULL) if p.kdf is None else u16(p.kdf[0]) + u16(p.kdf[1]))
    if isinstance(p.unique, tuple):
        out.append(tpm2b(p.unique[0]) + tpm2b(p.unique[1]))
    else:
        out.append(tpm2b(p.unique))
    tpmt = b"".join(out)
    return tpm2b(tpmt) if sized else tpmt


def build_public_ecc(
    key: ec.EllipticCurvePublicKey,
    attributes: int = AK_ATTRIBUTES,
    *,
    name_alg: int = TpmAlg.SHA256,
    scheme: int = TpmAlg.ECDSA,
    scheme_hash: int = TpmAlg.SHA256,
    symmetric: tuple[int, int, int] | None = None,
    kdf: tuple[int, int] | None = None,
    auth_policy: bytes = b"",
    sized: bool = True,
) -> bytes:
    """TPM2B_PUBLIC (or TPMT_PUBLIC) of an ECC key; defaults describe an ECDSA-SHA256 AK."""
    curve = _CURVE_IDS[key.curve.name]
    size = (key.curve.key_size + 7) // 8
    nums = key.public_numbers()
    p = TpmPublic(
        type=TpmAlg.ECC,
        name_alg=name_alg,
        object_attributes=int(attributes),
        auth_policy=auth_policy,
        symmetric=symmetric,
        scheme=scheme,
        scheme_hash=scheme_hash if scheme != TpmAlg.NULL else TpmAlg.NULL,
        rsa_bits=None,
        rsa_exponent=None,
        ecc_curve=curve,
        kdf=kdf,
        unique=(nums.x.to_bytes(size, "big"), nums.y.to_bytes(size, "big")),
        raw=b"",
    )
    return public_to_bytes(p, sized=sized)


def build_public_rsa(
    key: rsa.RSAPublicKey,
    attributes: int = AK_ATTRIBUTES,
    *,
    name_alg: int = TpmAlg.SHA256,
    scheme: int = TpmAlg.RSASSA,
    scheme_hash: int = TpmAlg.SHA256,
    symmetric: tuple[int, int, int] | None = None,
    auth_policy: bytes = b"",
    sized: bool = True,
) -> bytes:
    """TPM2B_PUBLIC (or TPMT_PUBLIC) of an RSA key; defaults describe an RSASSA-SHA256 AK.

    The exponent is written as 0 when it is 65537 (as TPMs do).
    """
    nums = key.public_numbers()
    p = TpmPublic(
        type=TpmAlg.RSA,
        name_alg=name_alg,
        object_attributes=int(attributes),
        auth_policy=auth_policy,
        symmetric=symmetric,
        scheme=scheme,
        scheme_hash=scheme_hash if scheme not in (TpmAlg.NULL, TpmAlg.RSAES) else TpmAlg.NULL,
        rsa_bits=key.key_size,
        rsa_exponent=0 if nums.e == 65537 else nums.e,
        ecc_curve=None,
        kdf=None,
        unique=nums.n.to_bytes(key.key_size // 8, "big"),
        raw=b"",
    )
    return public_to_bytes(p, sized=sized)
