"""Shared data and builders of synthetic event logs for the eventlog tests (no tests here)."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import EVENTLOG_DIR

EXPECTED: dict[str, dict] = json.loads((EVENTLOG_DIR / "EXPECTED.json").read_text())
GOOD_LOGS = sorted(name for name, v in EXPECTED.items() if v["consensus_pcrs"] is not None)
BAD_LOGS = sorted(name for name, v in EXPECTED.items() if v["consensus_pcrs"] is None)
BENCH_LOG = "gotpmtools_ubuntu-2404-amd-sevsnp.bin"

ALGS = {"sha1": (0x0004, 20), "sha256": (0x000B, 32), "sha384": (0x000C, 48)}
EV_NO_ACTION = 0x3
EV_SEPARATOR = 0x4
EV_EFI_ACTION = 0x80000007
EV_EFI_HCRTM_EVENT = 0x80000010


def read(name: str) -> bytes:
    return (EVENTLOG_DIR / name).read_bytes()


def path(name: str) -> Path:
    return EVENTLOG_DIR / name


def spec_id_data(
    banks: Sequence[str] = ("sha1", "sha256"),
    *,
    algs: Sequence[tuple[int, int]] | None = None,
    vendor: bytes = b"",
    uintn: int = 2,
) -> bytes:
    """TCG_EfiSpecIDEvent data ("Spec ID Event03")."""
    pairs = list(algs) if algs is not None else [ALGS[b] for b in banks]
    body = b"Spec ID Event03\x00" + struct.pack("<IBBBBI", 0, 0, 2, 0, uintn, len(pairs))
    body += b"".join(struct.pack("<HH", a, s) for a, s in pairs)
    return body + bytes([len(vendor)]) + vendor


def legacy_event(pcr: int, etype: int, digest: bytes, data: bytes) -> bytes:
    """A TCG_PCClientPCREvent (SHA-1 layout)."""
    return struct.pack("<II20sI", pcr, etype, digest, len(data)) + data


def event2(pcr: int, etype: int, digests: Sequence[tuple[int, bytes]], data: bytes) -> bytes:
    """A TCG_PCR_EVENT2 with the given (alg id, digest) pairs."""
    out = struct.pack("<III", pcr, etype, len(digests))
    out += b"".join(struct.pack("<H", alg) + d for alg, d in digests)
    return out + struct.pack("<I", len(data)) + data


def hashed(banks: Sequence[str], data: bytes) -> list[tuple[int, bytes]]:
    return [(ALGS[b][0], hashlib.new(b, data).digest()) for b in banks]


def zeros(banks: Sequence[str]) -> list[tuple[int, bytes]]:
    return [(ALGS[b][0], bytes(ALGS[b][1])) for b in banks]


def agile_log(
    events: Sequence[tuple[int, int, bytes]], banks: Sequence[str] = ("sha1", "sha256")
) -> bytes:
    """A crypto-agile log of (pcr, type, data) events whose digests are H(data)."""
    out = legacy_event(0, EV_NO_ACTION, bytes(20), spec_id_data(banks))
    for pcr, etype, data in events:
        digests = zeros(banks) if etype == EV_NO_ACTION else hashed(banks, data)
        out += event2(pcr, etype, digests, data)
    return out


def extend(banks: str, start: bytes, *digests: bytes) -> bytes:
    value = start
    for d in digests:
        value = hashlib.new(banks, value + d).digest()
    return value


SEPARATOR = (7, EV_SEPARATOR, b"\x00\x00\x00\x00")
ACTION = (4, EV_EFI_ACTION, b"Calling EFI Application from Boot Option")
STARTUP_LOCALITY_3 = (0, EV_NO_ACTION, b"StartupLocality\x00\x03")
