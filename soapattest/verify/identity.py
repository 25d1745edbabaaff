"""AK acceptance rules, applied at registration and again to every quote.

An attestation key is only worth something if the TPM guarantees that it
cannot leave the TPM and only signs TPM-generated structures: TPM 2.0 Part 1,
"Restricted Signing Keys" and "Attestation Keys".
"""

from __future__ import annotations

from dataclasses import dataclass

from soapattest.errors import AkAttributesError, SignatureSchemeError, WeakKeyError
from soapattest.tpm.constants import EccCurve, ObjectAttributes, TpmAlg, hash_by_alg
from soapattest.tpm.public import TpmPublic
from soapattest.verify.checks import registered

REQUIRED_AK_ATTRIBUTES = (
    ObjectAttributes.FIXED_TPM
    | ObjectAttributes.FIXED_PARENT
    | ObjectAttributes.SENSITIVE_DATA_ORIGIN
    | ObjectAttributes.RESTRICTED
    | ObjectAttributes.SIGN_ENCRYPT
)

CURVE_BITS: dict[int, int] = {
    EccCurve.NIST_P256: 256,
    EccCurve.NIST_P384: 384,
    EccCurve.NIST_P521: 521,
}

_SCHEMES_BY_TYPE = {
    TpmAlg.RSA: (TpmAlg.RSASSA, TpmAlg.RSAPSS),
    TpmAlg.ECC: (TpmAlg.ECDSA,),
}


_CACHE_MAX = 1024
_ACCEPTED: dict[tuple[object, ...], AkScheme] = registered({})


@dataclass(frozen=True, slots=True)
class KeyRules:
    """Minimum strength an AK must have, and the signature hashes accepted."""

    min_rsa_bits: int = 2048
    min_ecc_bits: int = 256
    signature_hashes: tuple[str, ...] = ("sha256", "sha384", "sha512")


@dataclass(frozen=True, slots=True)
class AkScheme:
    """The signature scheme and hash an AK's template fixes."""

    sig_alg: int
    hash_alg: int
    hash_name: str


def check_ak(ak: TpmPublic, rules: KeyRules) -> AkScheme:
    """Check that ``ak`` is an acceptable attestation key and return its fixed scheme.

    1. The key is RSA or ECC.
    2. fixedTPM, fixedParent, sensitiveDataOrigin, restricted and sign are set,
       decrypt is clear (a restricted signing key only signs TPM-made digests).
    3. The template fixes a signing scheme (not TPM_ALG_NULL) allowed for the
       key type, with a hash the rules accept.
    4. RSA modulus / ECC curve meets the minimum size.

    Raises :class:`AkAttributesError` for 1-3 (attributes and scheme),
    :class:`SignatureSchemeError` for a refused hash, :class:`WeakKeyError` for 4.

    An accepted AK is memoised by exactly the fields these rules read (every
    quote re-checks its host's AK; refusals are never memoised).
    """
    memo = (
        ak.type,
        ak.object_attributes,
        ak.scheme,
        ak.scheme_hash,
        ak.rsa_bits,
        ak.ecc_curve,
        rules.min_rsa_bits,
        rules.min_ecc_bits,
        rules.signature_hashes,
    )
    accepted = _ACCEPTED.get(memo)
    if accepted is None:
        accepted = _check_ak(ak, rules)
        if len(_ACCEPTED) >= _CACHE_MAX:
            _ACCEPTED.clear()
        _ACCEPTED[memo] = accepted
    return accepted


def _check_ak(ak: TpmPublic, rules: KeyRules) -> AkScheme:
    # 1. Key type.
    if ak.type not in _SCHEMES_BY_TYPE:
        raise AkAttributesError(f"AK type 0x{ak.type:04x} is neither RSA nor ECC")
    # 2. Attributes.
    missing = ObjectAttributes(REQUIRED_AK_ATTRIBUTES & ~ak.object_attributes)
    if missing:
        names = ", ".join(sorted(str(flag.name) for flag in missing))
        raise AkAttributesError(f"AK lacks required attributes: {names}")
    if ak.object_attributes & ObjectAttributes.DECRYPT:
        raise AkAttributesError("AK has the decrypt attribute: an AK must be a signing-only key")
    # 3. Scheme fixed by the template.
    if ak.scheme not in _SCHEMES_BY_TYPE[TpmAlg(ak.type)]:
        raise AkAttributesError(
            f"AK template scheme 0x{ak.scheme:04x} is not a fixed signing scheme for this key type"
        )
    hash_alg = hash_by_alg(ak.scheme_hash)
    if hash_alg is None:
        raise AkAttributesError(f"AK template scheme hash 0x{ak.scheme_hash:04x} is unknown")
    if hash_alg.name not in rules.signature_hashes:
        raise SignatureSchemeError(
            f"AK signs with {hash_alg.name}; accepted: {', '.join(rules.signature_hashes)}"
        )
    # 4. Strength.
    if ak.type == TpmAlg.RSA:
        bits = ak.rsa_bits or 0
        if bits < rules.min_rsa_bits:
            raise WeakKeyError(f"AK is RSA-{bits}; at least RSA-{rules.min_rsa_bits} is required")
    else:
        curve_bits = CURVE_BITS.get(ak.ecc_curve or 0, 0)
        if curve_bits < rules.min_ecc_bits:
            raise WeakKeyError(
                f"AK curve 0x{ak.ecc_curve or 0:04x} is below {rules.min_ecc_bits} bits "
                "or not an accepted NIST curve"
            )
    return AkScheme(sig_alg=ak.scheme, hash_alg=ak.scheme_hash, hash_name=hash_alg.name)
