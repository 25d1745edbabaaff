"""TPMT_PUBLIC / TPM2B_PUBLIC parsing (Part 2, 12.2), object names and public keys.

Accepted object types: RSA and ECC keys (NIST P-256/P-384/P-521 only) whose
public key :meth:`TpmPublic.public_key` returns, and KEYEDHASH/SYMCIPHER
objects, which parse but have no public key. Unknown algorithms, reserved
TPMA_OBJECT bits, values the specification forbids and trailing bytes are
refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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
from soapattest.tpm.constants import (
    HASH_ALGORITHMS,
    OBJECT_ATTRIBUTES_RESERVED,
    EccCurve,
    ObjectAttributes,
    TpmAlg,
)
from soapattest.tpm.reader import Reader

TPM_ALG_MGF1 = 0x0007  # TPM_ALG_MGF1, a TPMI_ALG_KDF value

PUBLIC_TYPES = frozenset({TpmAlg.RSA, TpmAlg.ECC, TpmAlg.KEYEDHASH, TpmAlg.SYMCIPHER})
RSA_KEY_BITS = frozenset({1024, 2048, 3072, 4096})
RSA_SCHEMES = frozenset({TpmAlg.RSASSA, TpmAlg.RSAPSS, TpmAlg.RSAES, TpmAlg.OAEP})
ECC_SCHEMES = frozenset(
    {TpmAlg.ECDSA, TpmAlg.ECDH, TpmAlg.ECDAA, TpmAlg.SM2, TpmAlg.ECSCHNORR, TpmAlg.ECMQV}
)
KDF_ALGS = frozenset({TPM_ALG_MGF1, TpmAlg.KDF1_SP800_56A, TpmAlg.KDF2, TpmAlg.KDF1_SP800_108})
SYM_KEY_BITS: dict[int, frozenset[int]] = {
    TpmAlg.AES: frozenset({128, 192, 256}),
    TpmAlg.CAMELLIA: frozenset({128, 192, 256}),
    TpmAlg.SM4: frozenset({128}),
}
SYM_MODES = frozenset({TpmAlg.CTR, TpmAlg.OFB, TpmAlg.CBC, TpmAlg.CFB, TpmAlg.ECB, TpmAlg.NULL})
CURVES: dict[int, tuple[ec.EllipticCurve, int]] = {
    EccCurve.NIST_P256: (ec.SECP256R1(), 32),
    EccCurve.NIST_P384: (ec.SECP384R1(), 48),
    EccCurve.NIST_P521: (ec.SECP521R1(), 66),
}
KEYEDHASH_SCHEMES = frozenset({TpmAlg.HMAC, TpmAlg.XOR})
_SCHEMES: dict[int, frozenset[int]] = {
    TpmAlg.RSA: RSA_SCHEMES,
    TpmAlg.ECC: ECC_SCHEMES,
    TpmAlg.KEYEDHASH: KEYEDHASH_SCHEMES,
}
RSA_MODULUS_MAX = 512
DIGEST_MAX = 64
DEFAULT_RSA_EXPONENT = 65537

_STRUCT = "TPMT_PUBLIC"
_HEAD = struct.Struct(">HHI")
# Memoised results (pure functions of their keys; bounded, cleared when full).
_CACHE_MAX = 1024
_KEYS: dict[tuple[object, ...], rsa.RSAPublicKey | ec.EllipticCurvePublicKey] = {}
_PARSED: dict[tuple[bytes, bool], TpmPublic] = {}
_RSA_PARMS = struct.Struct(">HI")


@dataclass(frozen=True, slots=True)
class TpmPublic:
    """A parsed TPMT_PUBLIC.

    ``symmetric`` is ``(alg, keyBits, mode)`` or ``None`` for TPM_ALG_NULL.
    ``scheme``/``scheme_hash`` are the TPMT_*_SCHEME algorithm and hash,
    ``TPM_ALG_NULL`` when absent (RSAES has no hash). ``rsa_exponent`` is as
    on the wire (0 means 65537). ``kdf`` is the ECC KDF ``(alg, hash)`` or,
    for a KEYEDHASH XOR scheme, ``(kdf, scheme_hash)``. ``ecdaa_count`` is the ECDAA scheme's
    count. ``unique`` is the RSA modulus or the ECC point ``(x, y)`` (digest
    for KEYEDHASH/SYMCIPHER). ``raw`` is the TPMT_PUBLIC bytes (what the name
    hashes).
    """

    type: int
    name_alg: int
    object_attributes: int
    auth_policy: bytes
    symmetric: tuple[int, int, int] | None
    scheme: int
    scheme_hash: int
    rsa_bits: int | None
    rsa_exponent: int | None
    ecc_curve: int | None
    kdf: tuple[int, int] | None
    unique: bytes | tuple[bytes, bytes]
    raw: bytes
    ecdaa_count: int | None = None

    def name(self) -> bytes:
        """The object's Name: nameAlg (UINT16) || H_nameAlg(TPMT_PUBLIC) (Part 1, 16)."""
        return self.name_alg.to_bytes(2, "big") + HASH_ALGORITHMS[self.name_alg].digest(self.raw)

    def has_attributes(self, attrs: ObjectAttributes | int) -> bool:
        """True when every bit of ``attrs`` is set in objectAttributes."""
        return self.object_attributes & attrs == attrs

    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        """The RSA or EC public key of the object.

        Raises :class:`NoPublicKeyError` for KEYEDHASH/SYMCIPHER objects and
        :class:`InvalidPublicKeyError` when the modulus length differs from
        keyBits, the point is missing or not on the curve, or the numbers are
        refused by the cryptography library.

        Keys are memoised by exactly the fields they are made from (a pure
        function of them; the key objects are immutable), so a verifier that
        sees the same AK for every quote builds it once.
        """
        memo = (self.type, self.rsa_bits, self.rsa_exponent, self.ecc_curve, self.unique)
        key = _KEYS.get(memo)
        if key is None:
            key = self._build_key()
            if len(_KEYS) >= _CACHE_MAX:
                _KEYS.clear()
            _KEYS[memo] = key
        return key

    def _build_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        if self.type == TpmAlg.RSA and isinstance(self.unique, bytes):
            modulus = self.unique
            if not modulus or len(modulus) * 8 != self.rsa_bits or not modulus[0] & 0x80:
                raise InvalidPublicKeyError(
                    f"RSA modulus of {len(modulus)} bytes does not have {self.rsa_bits} bits",
                    structure=_STRUCT,
                )
            e = self.rsa_exponent or DEFAULT_RSA_EXPONENT
            try:
                return rsa.RSAPublicNumbers(e, int.from_bytes(modulus, "big")).public_key()
            except ValueError as exc:
                raise InvalidPublicKeyError(f"RSA key refused: {exc}", structure=_STRUCT) from exc
        if self.type == TpmAlg.ECC and isinstance(self.unique, tuple):
            x, y = self.unique
            if self.ecc_curve not in CURVES:
                raise UnsupportedCurveError(
                    "curve not supported", curve=self.ecc_curve or 0, structure=_STRUCT
                )
            curve, size = CURVES[self.ecc_curve]
            if not x or not y:
                raise InvalidPublicKeyError("ECC point is empty", structure=_STRUCT)
            point = b"\x04" + x.rjust(size, b"\0") + y.rjust(size, b"\0")
            try:
                return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
            except ValueError as exc:
                raise InvalidPublicKeyError(
                    f"ECC point is not on {curve.name}", structure=_STRUCT
                ) from exc
        raise NoPublicKeyError(
            f"object type 0x{self.type:04x} has no asymmetric public key", structure=_STRUCT
        )


def _hash(r: Reader, what: str) -> int:
    at = r.pos
    alg = r.u16(what)
    if alg not in HASH_ALGORITHMS:
        raise UnknownAlgorithmError(
            f"{what} 0x{alg:04x} is not a known hash", alg=alg, structure=r.structure, offset=at
        )
    return alg


def _unknown(r: Reader, what: str, alg: int, at: int) -> UnknownAlgorithmError:
    return UnknownAlgorithmError(
        f"{what} 0x{alg:04x} not accepted", alg=alg, structure=r.structure, offset=at
    )


def _sym_def(r: Reader) -> tuple[int, int, int] | None:
    """TPMT_SYM_DEF_OBJECT (Part 2, 11.1.7)."""
    at = r.pos
    alg = r.u16("TPMT_SYM_DEF_OBJECT.algorithm")
    if alg == TpmAlg.NULL:
        return None
    allowed_bits = SYM_KEY_BITS.get(alg)
    if allowed_bits is None:
        raise _unknown(r, "symmetric algorithm", alg, at)
    at = r.pos
    bits = r.u16("TPMT_SYM_DEF_OBJECT.keyBits")
    if bits not in allowed_bits:
        raise InvalidValueError(
            f"symmetric keyBits {bits} not valid", structure=r.structure, offset=at
        )
    at = r.pos
    mode = r.u16("TPMT_SYM_DEF_OBJECT.mode")
    if mode not in SYM_MODES:
        raise _unknown(r, "symmetric mode", mode, at)
    return (alg, bits, mode)


def _kdf(r: Reader) -> tuple[int, int] | None:
    """TPMT_KDF_SCHEME (Part 2, 11.2.3.3); ``None`` for TPM_ALG_NULL."""
    at = r.pos
    alg = r.u16("TPMT_KDF_SCHEME.scheme")
    if alg == TpmAlg.NULL:
        return None
    if alg not in KDF_ALGS:
        raise _unknown(r, "KDF", alg, at)
    return (alg, _hash(r, "TPMT_KDF_SCHEME.hashAlg"))


def _check_size(r: Reader, value: bytes, sizes: tuple[int, ...], what: str, at: int) -> None:
    if len(value) not in sizes:
        raise InvalidValueError(
            f"{what} has {len(value)} bytes, expected one of {sizes}",
            structure=r.structure,
            offset=at,
        )


def _parse_tpmt(r: Reader, raw: bytes) -> TpmPublic:
    at = r.pos
    typ, name_alg, attrs = r.unpack(_HEAD, "TPMT_PUBLIC.type/nameAlg/objectAttributes")
    if typ not in PUBLIC_TYPES:
        raise _unknown(r, "object type", typ, at)
    if name_alg not in HASH_ALGORITHMS:
        raise _unknown(r, "nameAlg", name_alg, at + 2)
    if attrs & OBJECT_ATTRIBUTES_RESERVED:
        bits = attrs & OBJECT_ATTRIBUTES_RESERVED
        raise ReservedAttributeBitsError(
            f"reserved TPMA_OBJECT bits 0x{bits:08x} set",
            bits=bits,
            structure=r.structure,
            offset=at + 4,
        )
    digest_size = HASH_ALGORITHMS[name_alg].digest_size
    at = r.pos
    policy = r.tpm2b("TPMT_PUBLIC.authPolicy", max_size=DIGEST_MAX)
    _check_size(r, policy, (0, digest_size), "authPolicy", at)

    scheme: int = TpmAlg.NULL
    scheme_hash: int = TpmAlg.NULL
    rsa_bits: int | None = None
    rsa_exponent: int | None = None
    curve: int | None = None
    ecdaa_count: int | None = None
    kdf: tuple[int, int] | None = None
    symmetric = _sym_def(r) if typ != TpmAlg.KEYEDHASH else None
    unique: bytes | tuple[bytes, bytes]
    if typ == TpmAlg.SYMCIPHER and symmetric is None:
        raise InvalidValueError(
            "SYMCIPHER object without a symmetric algorithm", structure=r.structure, offset=at
        )
    if typ in (TpmAlg.RSA, TpmAlg.ECC, TpmAlg.KEYEDHASH):
        at = r.pos
        scheme = r.u16("TPMT_*_SCHEME.scheme")
        if scheme != TpmAlg.NULL:
            if scheme not in _SCHEMES[typ]:
                raise _unknown(r, "scheme", scheme, at)
            if scheme != TpmAlg.RSAES:
                scheme_hash = _hash(r, "TPMS_SCHEME_HASH.hashAlg")
            if scheme == TpmAlg.ECDAA:
                ecdaa_count = r.u16("TPMS_SCHEME_ECDAA.count")
            if scheme == TpmAlg.XOR:  # TPMS_SCHEME_XOR: hashAlg then a bare KDF id
                at = r.pos
                kdf_alg = r.u16("TPMS_SCHEME_XOR.kdf")
                if kdf_alg not in KDF_ALGS:
                    raise _unknown(r, "XOR KDF", kdf_alg, at)
                kdf = (kdf_alg, scheme_hash)
    if typ == TpmAlg.RSA:
        at = r.pos
        rsa_bits, rsa_exponent = r.unpack(_RSA_PARMS, "TPMS_RSA_PARMS.keyBits/exponent")
        if rsa_bits not in RSA_KEY_BITS:
            raise InvalidValueError(
                f"RSA keyBits {rsa_bits} not valid", structure=r.structure, offset=at
            )
        if rsa_exponent != 0 and (rsa_exponent < 3 or not rsa_exponent & 1):
            raise InvalidValueError(
                f"RSA exponent {rsa_exponent} not valid", structure=r.structure, offset=at + 2
            )
        at = r.pos
        unique = r.tpm2b("TPM2B_PUBLIC_KEY_RSA", max_size=RSA_MODULUS_MAX)
        _check_size(r, unique, (0, rsa_bits // 8), "RSA modulus", at)
    elif typ == TpmAlg.ECC:
        at = r.pos
        curve = r.u16("TPMS_ECC_PARMS.curveID")
        if curve not in CURVES:
            raise UnsupportedCurveError(
                f"curve 0x{curve:04x} not supported", curve=curve, structure=r.structure, offset=at
            )
        kdf = _kdf(r)
        size = CURVES[curve][1]
        x = r.tpm2b("TPMS_ECC_POINT.x", max_size=size)
        unique = (x, r.tpm2b("TPMS_ECC_POINT.y", max_size=size))
    else:
        unique = r.tpm2b("TPM2B_DIGEST unique", max_size=DIGEST_MAX)
    r.done()
    return TpmPublic(
        typ,
        name_alg,
        attrs,
        policy,
        symmetric,
        scheme,
        scheme_hash,
        rsa_bits,
        rsa_exponent,
        curve,
        kdf,
        unique,
        raw,
        ecdaa_count,
    )


def parse_public(data: bytes, *, sized: bool = True) -> TpmPublic:
    """Parse a whole buffer as TPM2B_PUBLIC (``sized=True``) or TPMT_PUBLIC.

    Checks (Part 2, 12.2): type RSA/ECC/KEYEDHASH/SYMCIPHER; nameAlg a known
    hash (TPM_ALG_NULL refused: such objects have no name); no reserved
    TPMA_OBJECT bit; authPolicy empty or a nameAlg digest; symmetric
    AES/CAMELLIA/SM4 with valid keyBits and mode, or NULL (not for
    SYMCIPHER); a scheme allowed for the type with a known hash; RSA keyBits
    1024/2048/3072/4096, exponent 0 or odd >= 3, modulus empty or keyBits/8
    bytes; ECC curve P-256/P-384/P-521, KDF NULL or a known KDF, coordinates
    at most the curve's size; no trailing byte (nor inside a TPM2B_PUBLIC).

    Raises :class:`TruncatedError`, :class:`TrailingBytesError`,
    :class:`UnknownAlgorithmError`, :class:`ReservedAttributeBitsError`,
    :class:`UnsupportedCurveError`, :class:`InvalidValueError`. Key material
    (point on the curve) is checked by :meth:`TpmPublic.public_key`.

    Successful parses are memoised by the exact bytes (a server sees the same
    few thousand AKs again and again; :class:`TpmPublic` is immutable).
    """
    data = bytes(data)
    memo = (data, sized)
    hit = _PARSED.get(memo)
    if hit is not None:
        return hit
    parsed = _parse(data, sized)
    if len(_PARSED) >= _CACHE_MAX:
        _PARSED.clear()
    _PARSED[memo] = parsed
    return parsed


def _parse(data: bytes, sized: bool) -> TpmPublic:
    if not sized:
        return _parse_tpmt(Reader(data, _STRUCT), data)
    outer = Reader(data, "TPM2B_PUBLIC")
    size = outer.u16("TPM2B_PUBLIC.size")
    if size == 0:
        raise InvalidValueError("TPM2B_PUBLIC is empty", structure="TPM2B_PUBLIC", offset=0)
    if size > outer.remaining:
        raise TruncatedError(
            f"size {size} but {outer.remaining} bytes follow", structure="TPM2B_PUBLIC", offset=0
        )
    if size < outer.remaining:
        raise TrailingBytesError(
            f"{outer.remaining - size} trailing bytes after the structure",
            structure="TPM2B_PUBLIC",
            offset=2 + size,
        )
    return _parse_tpmt(Reader(data, _STRUCT, start=2), data[2:])
