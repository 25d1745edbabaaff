"""TPM 2.0 constants (TPM 2.0 Library, Part 2: Structures) used by soapattest.

Only what the project parses or produces is listed; anything else is an
unknown value and is rejected by the parsers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

TPM_GENERATED_VALUE = 0xFF544347  # "\xffTCG", Part 2, 6.2
PCR_COUNT = 24  # PC Client platforms implement PCR 0..23
PCR_SELECT_MAX = 3  # octets of pcrSelect needed for 24 PCRs; more is refused
HASH_COUNT_MAX = 5  # banks a TPML_PCR_SELECTION / TPML_DIGEST_VALUES may carry here


class TpmAlg(IntEnum):
    """TPM_ALG_ID values (Part 2, 6.3 / TCG Algorithm Registry)."""

    ERROR = 0x0000
    RSA = 0x0001
    SHA1 = 0x0004
    HMAC = 0x0005
    AES = 0x0006
    KEYEDHASH = 0x0008
    XOR = 0x000A
    SHA256 = 0x000B
    SHA384 = 0x000C
    SHA512 = 0x000D
    NULL = 0x0010
    SM3_256 = 0x0012
    SM4 = 0x0013
    RSASSA = 0x0014
    RSAES = 0x0015
    RSAPSS = 0x0016
    OAEP = 0x0017
    ECDSA = 0x0018
    ECDH = 0x0019
    ECDAA = 0x001A
    SM2 = 0x001B
    ECSCHNORR = 0x001C
    ECMQV = 0x001D
    KDF1_SP800_56A = 0x0020
    KDF2 = 0x0021
    KDF1_SP800_108 = 0x0022
    ECC = 0x0023
    SYMCIPHER = 0x0025
    CAMELLIA = 0x0026
    SHA3_256 = 0x0027
    SHA3_384 = 0x0028
    SHA3_512 = 0x0029
    CTR = 0x0040
    OFB = 0x0041
    CBC = 0x0042
    CFB = 0x0043
    ECB = 0x0044


class TpmSt(IntEnum):
    """TPM_ST structure tags used in TPMS_ATTEST.type (Part 2, 6.9)."""

    ATTEST_NV = 0x8014
    ATTEST_COMMAND_AUDIT = 0x8015
    ATTEST_SESSION_AUDIT = 0x8016
    ATTEST_CERTIFY = 0x8017
    ATTEST_QUOTE = 0x8018
    ATTEST_TIME = 0x8019
    ATTEST_CREATION = 0x801A
    ATTEST_NV_DIGEST = 0x801C


class EccCurve(IntEnum):
    """TPM_ECC_CURVE values (Part 2, 6.4)."""

    NONE = 0x0000
    NIST_P192 = 0x0001
    NIST_P224 = 0x0002
    NIST_P256 = 0x0003
    NIST_P384 = 0x0004
    NIST_P521 = 0x0005
    BN_P256 = 0x0010
    BN_P638 = 0x0011
    SM2_P256 = 0x0020


class ObjectAttributes(IntFlag):
    """TPMA_OBJECT bits (Part 2, 8.3)."""

    FIXED_TPM = 1 << 1
    ST_CLEAR = 1 << 2
    FIXED_PARENT = 1 << 4
    SENSITIVE_DATA_ORIGIN = 1 << 5
    USER_WITH_AUTH = 1 << 6
    ADMIN_WITH_POLICY = 1 << 7
    NO_DA = 1 << 10
    ENCRYPTED_DUPLICATION = 1 << 11
    RESTRICTED = 1 << 16
    DECRYPT = 1 << 17
    SIGN_ENCRYPT = 1 << 18
    X509_SIGN = 1 << 19


# TPMA_OBJECT bits that are reserved (must be clear): 0, 3, 8, 9, 12-15, 20-31
OBJECT_ATTRIBUTES_RESERVED = 0xFFF0F309


@dataclass(frozen=True)
class HashAlgorithm:
    """A TPM hash algorithm and how to compute it."""

    alg: TpmAlg
    name: str  # bank name used throughout soapattest: "sha1", "sha256", ...
    digest_size: int

    def new(self, data: bytes = b"") -> Any:
        """A fresh hashlib object of this algorithm, fed with ``data``."""
        return _HASH_FACTORIES[self.alg](data)

    def digest(self, data: bytes) -> bytes:
        """The digest of ``data``."""
        return bytes(_HASH_FACTORIES[self.alg](data).digest())


def _sm3(data: bytes) -> Any:
    return hashlib.new("sm3", data)


_HASH_FACTORIES: dict[TpmAlg, Callable[[bytes], Any]] = {
    TpmAlg.SHA1: hashlib.sha1,
    TpmAlg.SHA256: hashlib.sha256,
    TpmAlg.SHA384: hashlib.sha384,
    TpmAlg.SHA512: hashlib.sha512,
    TpmAlg.SM3_256: _sm3,
}

HASH_ALGORITHMS: dict[int, HashAlgorithm] = {
    TpmAlg.SHA1: HashAlgorithm(TpmAlg.SHA1, "sha1", 20),
    TpmAlg.SHA256: HashAlgorithm(TpmAlg.SHA256, "sha256", 32),
    TpmAlg.SHA384: HashAlgorithm(TpmAlg.SHA384, "sha384", 48),
    TpmAlg.SHA512: HashAlgorithm(TpmAlg.SHA512, "sha512", 64),
    TpmAlg.SM3_256: HashAlgorithm(TpmAlg.SM3_256, "sm3_256", 32),
}

HASH_BY_NAME: dict[str, HashAlgorithm] = {h.name: h for h in HASH_ALGORITHMS.values()}


def hash_by_alg(alg: int) -> HashAlgorithm | None:
    """The hash algorithm for a TPM_ALG_ID, or ``None`` when it is not a known hash."""
    return HASH_ALGORITHMS.get(alg)


def hash_by_name(name: str) -> HashAlgorithm | None:
    """The hash algorithm for a bank name ("sha256"), or ``None``."""
    return HASH_BY_NAME.get(name)
