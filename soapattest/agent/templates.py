"""Key templates the trust agent asks its TPM to create (pure: bytes only).

- EK templates L-1 (RSA 2048) and L-2 (ECC NIST P-256) of the TCG EK
  Credential Profile for TPM Family 2.0 (version 2.x, section 2.2.1.4 / B.3.3,
  B.3.4): the "low range" default templates whose EK certificates live at NV
  indices 0x01c00002 and 0x01c0000a. A TPM derives the same EK from the same
  template every time (primary keys are a function of the endorsement seed
  and the template), which is why the public part matches the certificate.
- AK templates: restricted signing keys (fixedTPM, fixedParent,
  sensitiveDataOrigin, userWithAuth, restricted, sign) with ECDSA-SHA256 on
  NIST P-256 (default) or RSASSA-SHA256 on RSA 2048.

Key types are named ``"rsa"`` (RSA 2048) and ``"ecc"`` (NIST P-256) everywhere
in the agent and its SOAP interface.
"""

from __future__ import annotations

from soapattest.tpm.constants import EccCurve, TpmAlg
from soapattest.tpm.marshal import AK_ATTRIBUTES, EK_ATTRIBUTES, EK_POLICY_SHA256, public_to_bytes
from soapattest.tpm.public import TpmPublic

KEY_TYPES = ("rsa", "ecc")
"""Supported key types: RSA 2048 and ECC NIST P-256."""

# EK Credential Profile, Table 2 (low range NV indices).
EK_CERT_NV_INDEX = {"rsa": 0x01C00002, "ecc": 0x01C0000A}
EK_NONCE_NV_INDEX = {"rsa": 0x01C00003, "ecc": 0x01C0000B}
EK_TEMPLATE_NV_INDEX = {"rsa": 0x01C00004, "ecc": 0x01C0000C}

_AES128_CFB = (TpmAlg.AES, 128, TpmAlg.CFB)
_RSA_BYTES = 256
_P256_BYTES = 32


def _rsa(attributes: int, policy: bytes, symmetric: tuple[int, int, int] | None,
         scheme: int, scheme_hash: int, unique: bytes) -> TpmPublic:
    return TpmPublic(
        type=TpmAlg.RSA,
        name_alg=TpmAlg.SHA256,
        object_attributes=int(attributes),
        auth_policy=policy,
        symmetric=symmetric,
        scheme=scheme,
        scheme_hash=scheme_hash,
        rsa_bits=2048,
        rsa_exponent=0,
        ecc_curve=None,
        kdf=None,
        unique=unique,
        raw=b"",
    )


def _ecc(attributes: int, policy: bytes, symmetric: tuple[int, int, int] | None,
         scheme: int, scheme_hash: int, unique: tuple[bytes, bytes]) -> TpmPublic:
    return TpmPublic(
        type=TpmAlg.ECC,
        name_alg=TpmAlg.SHA256,
        object_attributes=int(attributes),
        auth_policy=policy,
        symmetric=symmetric,
        scheme=scheme,
        scheme_hash=scheme_hash,
        rsa_bits=None,
        rsa_exponent=None,
        ecc_curve=EccCurve.NIST_P256,
        kdf=None,
        unique=unique,
        raw=b"",
    )


def ek_template(key_type: str, nonce: bytes | None = None) -> bytes:
    """The TCG default EK template (TPM2B_PUBLIC bytes) for ``key_type``.

    L-1 (``"rsa"``): RSA 2048, nameAlg SHA-256, attributes fixedTPM |
    fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt,
    authPolicy = PolicySecret(TPM_RH_ENDORSEMENT), AES-128-CFB, no scheme,
    exponent 0, unique = 256 zero bytes. L-2 (``"ecc"``): the same with NIST
    P-256, no KDF, unique = two 32-byte zero coordinates.

    ``nonce``: the content of the EK nonce NV index when the manufacturer
    populated one (EK Credential Profile 2.2.1.5: the unique field then holds
    the nonce, padded with zeros to its size).

    Raises ``ValueError`` for an unknown key type or a nonce longer than the
    unique field.
    """
    fill = nonce or b""
    if key_type == "rsa":
        if len(fill) > _RSA_BYTES:
            raise ValueError("EK nonce longer than the RSA unique field")
        tmpl = _rsa(EK_ATTRIBUTES, EK_POLICY_SHA256, _AES128_CFB, TpmAlg.NULL, TpmAlg.NULL,
                    fill.ljust(_RSA_BYTES, b"\0"))
    elif key_type == "ecc":
        if len(fill) > _P256_BYTES:
            raise ValueError("EK nonce longer than the ECC unique field")
        tmpl = _ecc(EK_ATTRIBUTES, EK_POLICY_SHA256, _AES128_CFB, TpmAlg.NULL, TpmAlg.NULL,
                    (fill.ljust(_P256_BYTES, b"\0"), bytes(_P256_BYTES)))
    else:
        raise ValueError(f"unknown EK type {key_type!r} (expected one of {KEY_TYPES})")
    return public_to_bytes(tmpl)


def ak_template(key_type: str) -> bytes:
    """The attestation key template (TPM2B_PUBLIC bytes) for ``key_type``.

    ``"ecc"``: NIST P-256, ECDSA with SHA-256; ``"rsa"``: RSA 2048, RSASSA
    (PKCS#1 v1.5) with SHA-256. Both: nameAlg SHA-256, attributes fixedTPM |
    fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign, empty
    authPolicy and empty auth value, no symmetric algorithm, empty unique.

    Raises ``ValueError`` for an unknown key type.
    """
    if key_type == "rsa":
        tmpl = _rsa(AK_ATTRIBUTES, b"", None, TpmAlg.RSASSA, TpmAlg.SHA256, b"")
    elif key_type == "ecc":
        tmpl = _ecc(AK_ATTRIBUTES, b"", None, TpmAlg.ECDSA, TpmAlg.SHA256, (b"", b""))
    else:
        raise ValueError(f"unknown AK type {key_type!r} (expected one of {KEY_TYPES})")
    return public_to_bytes(tmpl)


def same_key_kind(a: TpmPublic, b: TpmPublic) -> bool:
    """True when two publics differ at most in their ``unique`` field.

    Used to decide whether a persistent AK was made from the configured
    template (type, nameAlg, attributes, policy, algorithms and sizes).
    """
    return (
        a.type == b.type
        and a.name_alg == b.name_alg
        and a.object_attributes == b.object_attributes
        and a.auth_policy == b.auth_policy
        and a.symmetric == b.symmetric
        and a.scheme == b.scheme
        and a.scheme_hash == b.scheme_hash
        and a.rsa_bits == b.rsa_bits
        and (a.rsa_exponent or 65537) == (b.rsa_exponent or 65537)
        and a.ecc_curve == b.ecc_curve
        and a.kdf == b.kdf
    )
