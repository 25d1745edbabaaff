"""TPM2_MakeCredential in software (Part 1, 24 "Credential Protection"; Part 3, 12.6).

The server uses it to bind an AK to an EK: it wraps a secret so that only
the TPM holding the EK's private key, and only for an object whose Name is
``object_name`` loaded in that TPM, can recover it with
TPM2_ActivateCredential.

Steps (Part 1, 24.4-24.5, and Annex B.10.3 / C.6.4 for the seed):

1. seed: RSA EK - ``seed`` random, ``nameAlg`` digest size, encrypted with
   RSA-OAEP(nameAlg, label ``"IDENTITY\\0"``); ECC EK - ephemeral key
   ``(d_e, Q_e)`` on the EK's curve, ``Z = x([d_e] Q_EK)``,
   ``seed = KDFe(nameAlg, Z, "IDENTITY", x(Q_e), x(Q_EK))``, and the
   encrypted secret is the marshalled TPMS_ECC_POINT ``Q_e``;
2. ``symKey = KDFa(nameAlg, seed, "STORAGE", name, "", symBits)``;
3. ``encIdentity = CFB(symKey, IV=0, TPM2B_DIGEST(credential))``;
4. ``HMACkey = KDFa(nameAlg, seed, "INTEGRITY", "", "", digestBits)``;
5. ``integrityHMAC = HMAC(nameAlg, HMACkey, encIdentity || name)``;
6. TPM2B_ID_OBJECT = ``TPM2B(TPM2B(integrityHMAC) || encIdentity)``.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # cryptography >= 47 keeps CFB under "decrepit" (the TPM still uses it)
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB

from soapattest.errors import CredentialError, TpmFormatError
from soapattest.tpm.constants import HASH_ALGORITHMS, ObjectAttributes, TpmAlg
from soapattest.tpm.public import CURVES, TpmPublic

IDENTITY_LABEL = b"IDENTITY\0"
STORAGE_LABEL = b"STORAGE\0"
INTEGRITY_LABEL = b"INTEGRITY\0"

_HASHES: dict[int, hashes.HashAlgorithm] = {
    TpmAlg.SHA1: hashes.SHA1(),  # noqa: S303 - a TPM nameAlg; HMAC/KDF use only
    TpmAlg.SHA256: hashes.SHA256(),
    TpmAlg.SHA384: hashes.SHA384(),
    TpmAlg.SHA512: hashes.SHA512(),
}
_EPHEMERAL_TRIES = 64


def _u32(v: int) -> bytes:
    return v.to_bytes(4, "big")


def _tpm2b(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _truncate(stream: bytes, bits: int) -> bytes:
    out = stream[: (bits + 7) // 8]
    if bits % 8:
        out = bytes([out[0] & (0xFF >> (8 - bits % 8))]) + out[1:]
    return out


def kdfa(
    hash_alg: int, key: bytes, label: bytes, context_u: bytes, context_v: bytes, bits: int
) -> bytes:
    """KDFa (Part 1, 11.4.10.2): SP 800-108 counter mode with HMAC-``hash_alg``.

    ``label`` gets a terminating zero octet when it has none. Returns
    ``ceil(bits/8)`` bytes (the high bits of the first octet masked).
    """
    h = _HASHES[hash_alg]
    if not label.endswith(b"\0"):
        label += b"\0"
    tail = label + context_u + context_v + _u32(bits)
    out = b""
    counter = 0
    while len(out) * 8 < bits:
        counter += 1
        mac = hmac.HMAC(key, h)
        mac.update(_u32(counter) + tail)
        out += mac.finalize()
    return _truncate(out, bits)


def kdfe(hash_alg: int, z: bytes, label: bytes, party_u: bytes, party_v: bytes, bits: int) -> bytes:
    """KDFe (Part 1, 11.4.10.3): SP 800-56A concatenation KDF with ``hash_alg``.

    ``label`` gets a terminating zero octet when it has none.
    """
    alg = HASH_ALGORITHMS[hash_alg]
    if not label.endswith(b"\0"):
        label += b"\0"
    out = b""
    counter = 0
    while len(out) * 8 < bits:
        counter += 1
        out += alg.digest(_u32(counter) + z + label + party_u + party_v)
    return _truncate(out, bits)


def _draw(random_bytes: Callable[[int], bytes], n: int) -> bytes:
    out = random_bytes(n)
    if not isinstance(out, bytes) or len(out) != n:
        raise CredentialError(f"random_bytes({n}) did not return {n} bytes")
    return out


def _check_name(object_name: bytes) -> None:
    alg = (
        HASH_ALGORITHMS.get(int.from_bytes(object_name[:2], "big"))
        if len(object_name) > 2
        else None
    )
    if alg is None or len(object_name) != 2 + alg.digest_size:
        raise CredentialError("object name is not nameAlg || digest of a known hash")


def _check_ek(ek: TpmPublic) -> tuple[int, int]:
    """Validate the EK as a credential protector; returns (nameAlg, symmetric key bits)."""
    if not ek.has_attributes(ObjectAttributes.RESTRICTED | ObjectAttributes.DECRYPT) or (
        ek.has_attributes(ObjectAttributes.SIGN_ENCRYPT)
    ):
        raise CredentialError("the EK is not a restricted decryption key")
    if ek.name_alg not in _HASHES:
        raise CredentialError(f"EK nameAlg 0x{ek.name_alg:04x} not supported")
    if ek.symmetric is None or ek.symmetric[0] != TpmAlg.AES or ek.symmetric[2] != TpmAlg.CFB:
        raise CredentialError("the EK has no AES-CFB symmetric definition")
    if ek.type not in (TpmAlg.RSA, TpmAlg.ECC):
        raise CredentialError(f"EK type 0x{ek.type:04x} cannot protect a credential")
    return ek.name_alg, ek.symmetric[1]


def _rsa_seed(
    key: rsa.RSAPublicKey, name_alg: int, random_bytes: Callable[[int], bytes]
) -> tuple[bytes, bytes]:
    size = HASH_ALGORITHMS[name_alg].digest_size
    if key.key_size < 2048 or key.key_size // 8 < 2 * size + 2 + size:
        raise CredentialError(f"RSA EK of {key.key_size} bits is too small")
    seed = _draw(random_bytes, size)
    h = _HASHES[name_alg]
    pad = padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=IDENTITY_LABEL)
    return seed, key.encrypt(seed, pad)


def _ecc_seed(
    ek: TpmPublic,
    key: ec.EllipticCurvePublicKey,
    name_alg: int,
    random_bytes: Callable[[int], bytes],
) -> tuple[bytes, bytes]:
    size = CURVES[ek.ecc_curve or 0][1]
    bits = key.curve.key_size
    for _ in range(_EPHEMERAL_TRIES):
        d = int.from_bytes(_draw(random_bytes, size), "big") & ((1 << bits) - 1)
        try:
            ephemeral = ec.derive_private_key(d, key.curve)
        except ValueError:  # 0 or not below the group order: draw again
            continue
        break
    else:
        raise CredentialError("random_bytes gave no valid ephemeral ECC key")
    z = ephemeral.exchange(ec.ECDH(), key)
    nums = ephemeral.public_key().public_numbers()
    qx, qy = nums.x.to_bytes(size, "big"), nums.y.to_bytes(size, "big")
    ek_x = ek.unique[0] if isinstance(ek.unique, tuple) else b""
    digest_bits = HASH_ALGORITHMS[name_alg].digest_size * 8
    seed = kdfe(name_alg, z, IDENTITY_LABEL, qx, ek_x, digest_bits)
    return seed, _tpm2b(qx) + _tpm2b(qy)


def make_credential(
    ek: TpmPublic,
    object_name: bytes,
    credential: bytes,
    *,
    random_bytes: Callable[[int], bytes],
) -> tuple[bytes, bytes]:
    """Wrap ``credential`` for ``object_name`` under the EK ``ek`` (TPM2_MakeCredential).

    ``random_bytes(n)`` supplies the seed (RSA) or the ephemeral private key
    (ECC); pass ``os.urandom`` (or ``secrets.token_bytes``) outside tests.
    RSA-OAEP padding draws its own randomness from OpenSSL.

    Returns ``(TPM2B_ID_OBJECT bytes, TPM2B_ENCRYPTED_SECRET bytes)``, the
    ``credentialBlob`` and ``secret`` arguments of TPM2_ActivateCredential.

    Raises :class:`CredentialError` when the EK is not a restricted decryption
    RSA (>= 2048 bits) / NIST-curve ECC key with an AES-CFB symmetric
    definition and a SHA-1/2 nameAlg, when its public key is invalid, when
    ``object_name`` is not ``nameAlg || digest``, or when ``credential`` is
    empty or longer than the EK nameAlg's digest (Part 3, 12.6: TPM_RC_SIZE).
    """
    name_alg, sym_bits = _check_ek(ek)
    _check_name(object_name)
    digest_size = HASH_ALGORITHMS[name_alg].digest_size
    if not 0 < len(credential) <= digest_size:
        raise CredentialError(f"credential must have 1..{digest_size} bytes")
    try:
        key = ek.public_key()
    except TpmFormatError as exc:
        raise CredentialError(f"EK public key unusable: {exc.message}") from exc
    # 1. The seed and its protection under the EK.
    if isinstance(key, rsa.RSAPublicKey):
        seed, secret = _rsa_seed(key, name_alg, random_bytes)
    else:
        seed, secret = _ecc_seed(ek, key, name_alg, random_bytes)
    # 2-3. Symmetric key bound to the object's name; encrypt the TPM2B credential.
    sym_key = kdfa(name_alg, seed, STORAGE_LABEL, object_name, b"", sym_bits)
    enc = Cipher(algorithms.AES(sym_key), CFB(b"\0" * 16)).encryptor()
    enc_identity = enc.update(_tpm2b(credential)) + enc.finalize()
    # 4-5. Integrity HMAC over encIdentity || name.
    hmac_key = kdfa(name_alg, seed, INTEGRITY_LABEL, b"", b"", digest_size * 8)
    mac = hmac.HMAC(hmac_key, _HASHES[name_alg])
    mac.update(enc_identity + object_name)
    # 6. TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
    id_object = _tpm2b(_tpm2b(mac.finalize()) + enc_identity)
    return id_object, _tpm2b(secret)
