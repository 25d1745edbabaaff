"""Policies: which whitelists a host must satisfy, in which banks, with which extra rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

LATEST: None = None  # WhitelistRef.version for "the newest version at evaluation time"


class Combine(StrEnum):
    """How a policy combines its whitelists."""

    ALL_OF = "ALL_OF"  # the host must satisfy every whitelist
    ANY_OF = "ANY_OF"  # the host must satisfy at least one whitelist


class ImaMode(StrEnum):
    """How much of the IMA runtime log a policy appraises."""

    OFF = "off"  # IMA is not looked at
    INTEGRITY = "integrity"  # the list must replay to PCR 10 and carry a matching boot_aggregate
    ALLOWLIST = "allowlist"  # integrity, and every measured file must be in an IMA whitelist


@dataclass(frozen=True, slots=True)
class WhitelistRef:
    """A whitelist by name and version; ``version=None`` means the latest at evaluation."""

    name: str
    version: int | None = LATEST

    def __str__(self) -> str:
        return f"{self.name}@{'latest' if self.version is None else self.version}"


@dataclass(frozen=True, slots=True)
class SecureBootRequirements:
    """UEFI Secure Boot rules evaluated on the PCR 7 events.

    ``dbx_must_contain``: SHA-256 hashes (revocations) that must be in dbx.
    ``allowed_authorities``: SHA-256 fingerprints of the db certificates that
    may have verified boot applications (empty: any db certificate).
    """

    require_enabled: bool = True
    dbx_must_contain: tuple[bytes, ...] = ()
    allowed_authorities: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class ImaRequirements:
    """IMA rules: the mode and the bank PCR 10 is appraised in."""

    mode: ImaMode = ImaMode.OFF
    bank: str = "sha256"


@dataclass(frozen=True, slots=True)
class Policy:
    """One version of a named policy.

    ``banks``: PCR banks the quote must cover and the whitelists are evaluated
    in (every listed bank is required). ``signature_hashes``: hash algorithms
    the AK signature may use. An empty ``whitelists`` tuple is refused by the
    verifier: there is no accept-all policy.
    """

    name: str
    version: int
    combine: Combine
    whitelists: tuple[WhitelistRef, ...]
    banks: tuple[str, ...] = ("sha256",)
    use_event_log: bool = True
    secure_boot: SecureBootRequirements | None = None
    ima: ImaRequirements = field(default_factory=ImaRequirements)
    signature_hashes: tuple[str, ...] = ("sha256", "sha384", "sha512")
    min_rsa_bits: int = 2048
    min_ecc_bits: int = 256
    description: str = ""
    created_at: datetime | None = None
    created_by: str = ""
