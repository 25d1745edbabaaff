"""Hand-made IMA entries, written independently of soapattest.tpm.ima from the
kernel's rules (ima_fs.c, ima_template_lib.c, ima_crypto.c), plus tests that pin
the builders to real kernel output (so the hand-made entries are trustworthy)."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import pytest

from tests.conftest import EVENTLOG_DIR, IMA_DIR

EXPECTED = json.loads((IMA_DIR / "EXPECTED.json").read_text())
LISTS = sorted(name for name in EXPECTED if not name.startswith("_"))
ASCII_LIST = "imaverify_vm_ascii_runtime_measurements_sha256"
BINARY_TWIN = "imaverify_vm_e5460c7_binary_runtime_measurements_sha256"  # same boot as ASCII_LIST
SHA1_LIST = "imaverify_vm_binary_runtime_measurements_sha1"
SHA256_LIST = "imaverify_vm_binary_runtime_measurements_sha256"
FIRMWARE_LOG = EVENTLOG_DIR / "imaverify_vm_binary_bios_measurements.bin"


def read_list(name: str) -> bytes:
    return (IMA_DIR / name).read_bytes()


def read_pcr_dump(path: Path) -> dict[str, dict[int, bytes]]:
    """Parse a tpm2_pcrread dump (``  sha1:`` then ``    0 : 0xHEX`` lines)."""
    banks: dict[str, dict[int, bytes]] = {}
    bank: dict[int, bytes] | None = None
    for line in path.read_text().splitlines():
        head = re.fullmatch(r"\s*(sha\d+):\s*", line)
        if head:
            bank = banks.setdefault(head.group(1), {})
            continue
        value = re.fullmatch(r"\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*", line)
        if value and bank is not None:
            bank[int(value.group(1))] = bytes.fromhex(value.group(2))
    return {name: values for name, values in banks.items() if values}


# --------------------------------------------------------------------------
# Field encodings (binary template data).
# --------------------------------------------------------------------------

HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
          "sha512": hashlib.sha512}  # fmt: skip


def sha1(data: bytes = b"") -> hashlib._Hash:
    """SHA-1 as IMA uses it (a measurement format, not a choice of ours)."""
    return hashlib.sha1(data, usedforsecurity=False)


def d_ng(alg: str, digest: bytes, digest_type: str | None = None) -> bytes:
    prefix = f"{digest_type}:{alg}:" if digest_type else f"{alg}:"
    return prefix.encode() + b"\0" + digest


def n_ng(name: str) -> bytes:
    return name.encode() + b"\0"


def td(*fields: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(f)) + f for f in fields)


def ima_hashed(d: bytes, name: str) -> bytes:
    raw = name.encode()
    return d + raw + bytes(256 - len(raw))


def binary_entry(
    template: str,
    template_data: bytes,
    *,
    pcr: int = 10,
    alg: str = "sha1",
    digest: bytes | None = None,
    violation: bool = False,
) -> bytes:
    """One binary record of a non-'ima' template (digest = H_alg(template data))."""
    if digest is None:
        h = HASHES[alg]
        digest = bytes(h().digest_size) if violation else h(template_data).digest()
    name = template.encode()
    return (
        struct.pack("<I", pcr)
        + digest
        + struct.pack("<I", len(name))
        + name
        + struct.pack("<I", len(template_data))
        + template_data
    )


def binary_ima_entry(d: bytes, name: str, *, pcr: int = 10, digest: bytes | None = None) -> bytes:
    """One binary record of the old 'ima' template (no template data length)."""
    if digest is None:
        digest = sha1(ima_hashed(d, name)).digest()
    raw = name.encode()
    return (
        struct.pack("<I", pcr) + digest + struct.pack("<I", 3) + b"ima" + d
        + struct.pack("<I", len(raw)) + raw
    )  # fmt: skip


def ascii_line(template: str, tokens: list[str], digest: bytes, *, pcr: int = 10) -> bytes:
    """One ascii line: "%2d " PCR, digest hex, " name", then " token" per field."""
    return (
        f"{pcr:2d} {digest.hex()} {template}" + "".join(" " + t for t in tokens) + "\n"
    ).encode()


# --------------------------------------------------------------------------
# The builders reproduce real kernel output.
# --------------------------------------------------------------------------


def _first_record(data: bytes, digest_size: int) -> bytes:
    pos = 4 + digest_size
    (name_len,) = struct.unpack_from("<I", data, pos)
    pos += 4 + name_len
    (td_len,) = struct.unpack_from("<I", data, pos)
    return data[: pos + 4 + td_len]


def test_builder_reproduces_the_real_sha1_boot_aggregate_record() -> None:
    data = read_list(SHA1_LIST)
    aggregate = bytes.fromhex(EXPECTED[SHA1_LIST]["replay"]["boot_aggregate"].split(":")[1])
    built = binary_entry("ima-ng", td(d_ng("sha1", aggregate), n_ng("boot_aggregate")))
    assert built == _first_record(data, 20)


def test_builder_reproduces_the_real_sha256_boot_aggregate_record() -> None:
    data = read_list(SHA256_LIST)
    aggregate = bytes.fromhex(EXPECTED[SHA256_LIST]["replay"]["boot_aggregate"].split(":")[1])
    built = binary_entry(
        "ima-ng", td(d_ng("sha256", aggregate), n_ng("boot_aggregate")), alg="sha256"
    )
    assert built == _first_record(data, 32)


def test_builder_reproduces_the_real_ascii_line() -> None:
    first = read_list(ASCII_LIST).split(b"\n", 1)[0] + b"\n"
    aggregate = bytes.fromhex(EXPECTED[ASCII_LIST]["replay"]["boot_aggregate"].split(":")[1])
    data = td(d_ng("sha256", aggregate), n_ng("boot_aggregate"))
    built = ascii_line(
        "ima-ng", [f"sha256:{aggregate.hex()}", "boot_aggregate"], hashlib.sha256(data).digest()
    )
    assert built == first


def test_pcr_dump_reader_reads_both_banks() -> None:
    dump = read_pcr_dump(IMA_DIR / "imaverify_vm_800ce6c_pcrs_sha1.txt")
    assert sorted(dump) == ["sha1", "sha256"]
    assert sorted(dump["sha1"]) == list(range(24))
    assert len(dump["sha256"][10]) == 32


@pytest.mark.parametrize("name", LISTS)
def test_every_list_is_present_with_its_recorded_hash(name: str) -> None:
    data = read_list(name)
    assert len(data) == EXPECTED[name]["size"]
    assert hashlib.sha256(data).hexdigest() == EXPECTED[name]["sha256"]
