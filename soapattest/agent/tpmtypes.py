"""Values the trust agent gets from its TPM, and helpers that need no TPM (pure).

Kept apart from :mod:`soapattest.agent.tpm` (the only ESAPI user) so that
the rest of the agent and the simulator can name these types without loading
tpm2-pytss.
"""

from __future__ import annotations

from dataclasses import dataclass

from soapattest.tpm.pcr import PcrValues


@dataclass(frozen=True, slots=True)
class TpmInfo:
    """Static facts about the TPM: vendor, firmware and active PCR banks.

    ``manufacturer`` is the 4-character vendor ID (TPM_PT_MANUFACTURER as ASCII,
    trailing NUL/space removed, e.g. ``"IBM"``, ``"INTC"``); the firmware
    version is TPM_PT_FIRMWARE_VERSION_1 and _2 as reported (vendor-defined).
    """

    manufacturer: str
    manufacturer_id: int
    firmware_version_1: int
    firmware_version_2: int
    banks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EkInfo:
    """One endorsement key: its TPM2B_PUBLIC bytes and its certificate (DER) when provisioned."""

    key_type: str
    public: bytes
    certificate: bytes | None


@dataclass(frozen=True, slots=True)
class AkInfo:
    """The persistent attestation key: handle, TPM2B_PUBLIC bytes and Name."""

    key_type: str
    handle: int
    public: bytes
    name: bytes
    created: bool


@dataclass(frozen=True, slots=True)
class QuoteResult:
    """A quote and the PCR values it covers.

    ``attest`` is the TPMS_ATTEST bytes (the signed message), ``signature`` the
    TPMT_SIGNATURE bytes, ``pcrs`` the values of exactly the quoted selection,
    ``update_counter`` the pcrUpdateCounter they were read at, ``attempts``
    how many quotes it took (PCRs changing in between force a retry).
    """

    attest: bytes
    signature: bytes
    pcrs: PcrValues
    update_counter: int
    attempts: int


def parse_tcti(tcti: str) -> tuple[str, str | None]:
    """Split ``"name:conf"`` into ``(name, conf)``; ``conf`` is ``None`` when absent.

    Raises ``ValueError`` for an empty name.
    """
    name, sep, conf = tcti.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"TCTI {tcti!r} has no name (expected e.g. device:/dev/tpmrm0)")
    return name, (conf if sep else None)


def digest_list(tpml: bytes) -> list[bytes]:
    """The digests of a marshalled TPML_DIGEST (faster than iterating the cffi object)."""
    count = int.from_bytes(tpml[:4], "big")
    out, pos = [], 4
    for _ in range(count):
        size = int.from_bytes(tpml[pos : pos + 2], "big")
        out.append(tpml[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return out


def trim_der(data: bytes) -> bytes:
    """``data`` cut to the length of the DER SEQUENCE it starts with (NV areas may be padded).

    Returned unchanged when it does not start with a definite-length SEQUENCE.
    """
    if len(data) < 2 or data[0] != 0x30:
        return data
    first = data[1]
    if first < 0x80:
        total = 2 + first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or len(data) < 2 + n:
            return data
        total = 2 + n + int.from_bytes(data[2 : 2 + n], "big")
    return data[:total] if total <= len(data) else data
