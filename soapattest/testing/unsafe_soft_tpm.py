"""A software stand-in for a TPM's attestation key: UNSAFE, for tests and benchmarks only.

It signs TPMS_ATTEST structures with a private key held in Python memory, so
anything it produces proves nothing about a platform. The server never
enrols such a key through its production paths: tests and benchmarks insert
its identity into the store themselves.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from soapattest.tpm.attest import ClockInfo
from soapattest.tpm.constants import PCR_COUNT, TpmAlg, hash_by_name
from soapattest.tpm.eventlog import EventLog
from soapattest.tpm.marshal import (
    build_public_ecc,
    build_public_rsa,
    build_quote,
    sign_ecdsa,
    sign_rsa,
)
from soapattest.tpm.pcr import PcrSelection, extend, pcr_digest
from soapattest.tpm.public import TpmPublic, parse_public
from soapattest.verify.quote import QuoteEvidence

_HASH_IDS = {"sha1": TpmAlg.SHA1, "sha256": TpmAlg.SHA256, "sha384": TpmAlg.SHA384}


@dataclass
class UnsafeSoftTpm:
    """PCR banks plus a software AK. ``key_type`` is "ecc" (P-256) or "rsa" (2048)."""

    key_type: str = "ecc"
    banks: tuple[str, ...] = ("sha256",)
    sig_hash: str = "sha256"
    reset_count: int = 1
    restart_count: int = 0
    clock: int = 1000
    firmware_version: int = 0x2023_0001
    pcrs: dict[str, list[bytes]] = field(init=False)
    _key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pcrs = {}
        self.reset()
        hash_id = _HASH_IDS[self.sig_hash]
        if self.key_type == "ecc":
            key = ec.generate_private_key(ec.SECP256R1())
            self._key = key
            self.ak_public_bytes = build_public_ecc(key.public_key(), scheme_hash=hash_id)
        elif self.key_type == "rsa":
            rkey = rsa.generate_private_key(65537, 2048)
            self._key = rkey
            self.ak_public_bytes = build_public_rsa(rkey.public_key(), scheme_hash=hash_id)
        else:
            raise ValueError(f"unknown key type {self.key_type}")
        self.ak: TpmPublic = parse_public(self.ak_public_bytes)
        self.ak_name = self.ak.name()
        # qualifiedSigner: nameAlg || H(parent QN || name); a fixed, well-formed value.
        self.qualified_signer = self.ak_name[:2] + hashlib.sha256(b"qn" + self.ak_name).digest()

    def reset(self) -> None:
        """TPM reset: PCRs back to zero (17-22 to FF), resetCount increments."""
        for bank in self.banks:
            size = hash_by_name(bank).digest_size  # type: ignore[union-attr]
            self.pcrs[bank] = [
                b"\xff" * size if 17 <= i <= 22 else bytes(size) for i in range(PCR_COUNT)
            ]
        self.reset_count += 1

    def extend(self, pcr: int, digests: Mapping[str, bytes]) -> None:
        """Extend ``pcr`` in every bank with the digest given for that bank."""
        for bank in self.banks:
            self.pcrs[bank][pcr] = extend(bank, self.pcrs[bank][pcr], digests[bank])

    def boot(self, log: EventLog, *, locality: int | None = None) -> None:
        """Reset, then extend every extending event of ``log`` (like firmware would)."""
        self.reset()
        start = log.startup_locality if locality is None else locality
        if start:
            for bank in self.banks:
                size = hash_by_name(bank).digest_size  # type: ignore[union-attr]
                self.pcrs[bank][0] = bytes(size - 1) + bytes([start])
        for event in log.events:
            if event.extends:
                self.extend(event.pcr, event.digests)

    def values(self, selection: PcrSelection) -> dict[str, dict[int, bytes]]:
        """Current values for ``selection``."""
        out: dict[str, dict[int, bytes]] = {}
        for bank, pcr in selection.pcrs():
            out.setdefault(bank, {})[pcr] = self.pcrs[bank][pcr]
        return out

    def quote(
        self,
        nonce: bytes,
        selection: PcrSelection | Mapping[str, Iterable[int]],
        *,
        advance_clock: int = 10,
    ) -> QuoteEvidence:
        """Quote ``selection`` with ``nonce``; returns untrusted-shaped evidence."""
        sel = (
            selection
            if isinstance(selection, PcrSelection)
            else PcrSelection.from_mapping(selection)
        )
        self.clock += advance_clock
        values = self.values(sel)
        attest = build_quote(
            pcr_select=sel,
            pcr_digest=pcr_digest(self.sig_hash, sel, values),
            extra_data=nonce,
            qualified_signer=self.qualified_signer,
            clock_info=ClockInfo(self.clock, self.reset_count, self.restart_count, True),
            firmware_version=self.firmware_version,
        )
        return QuoteEvidence(attest=attest, signature=self.sign(attest), raw_pcrs=values)

    def sign(self, message: bytes) -> bytes:
        """TPMT_SIGNATURE over ``message`` with the software AK."""
        hash_id = _HASH_IDS[self.sig_hash]
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return sign_ecdsa(self._key, message, hash_id)
        return sign_rsa(self._key, message, hash_id)


def unsafe_random_nonce(size: int = 32) -> bytes:
    """A random nonce (tests)."""
    return os.urandom(size)
