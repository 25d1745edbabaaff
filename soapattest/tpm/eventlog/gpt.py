"""UEFI_GPT_DATA of EV_EFI_GPT_EVENT (PFP 1.05 section 10.2.6; UEFI 2.10 section 5.3).

Layout: EFI_PARTITION_TABLE_HEADER (92 bytes), UINT64 NumberOfPartitions, then
that many EFI_PARTITION_ENTRY of ``SizeOfPartitionEntry`` bytes each.
"""

from __future__ import annotations

from typing import Any

from soapattest.tpm.eventlog.cursor import Cursor, DecodeError, clip, guid_text, utf16z

GPT_SIGNATURE = b"EFI PART"
HEADER_SIZE = 92
MAX_PARTITIONS_SHOWN = 128

PARTITION_TYPES = {
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI System",
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
    "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
    "e6d6d379-f507-44c2-a23c-238f2a3df928": "Linux LVM",
    "a19d880f-05fc-4d3b-a006-743f0f84911e": "Linux RAID",
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "Linux root (x86-64)",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
    "de94bba4-06d1-4d40-a16a-bfd50179d6ac": "Windows recovery",
}


def decode_gpt(data: bytes) -> tuple[str, dict[str, Any]]:
    """Header and partition entries; raises DecodeError when the layout does not hold."""
    c = Cursor(data)
    header = Cursor(c.take(HEADER_SIZE, "EFI_PARTITION_TABLE_HEADER"))
    if header.take(8) != GPT_SIGNATURE:
        raise DecodeError("the partition table header signature is not 'EFI PART'")
    revision, header_size, _crc, _reserved = header.u32(), header.u32(), header.u32(), header.u32()
    my_lba, alternate_lba, first_usable, last_usable = (
        header.u64(),
        header.u64(),
        header.u64(),
        header.u64(),
    )
    disk_guid = header.guid()
    _entry_lba, _entries, entry_size = header.u64(), header.u32(), header.u32()
    count = c.u64("NumberOfPartitions")
    if entry_size < 128 or count * entry_size != c.remaining:
        raise DecodeError(
            f"{count} partitions of {entry_size} bytes do not match the {c.remaining} bytes left"
        )
    partitions: list[dict[str, Any]] = []
    for _ in range(count):
        entry = Cursor(c.take(entry_size))
        type_guid = guid_text(entry.take(16))
        unique = guid_text(entry.take(16))
        start, end, attributes = entry.u64(), entry.u64(), entry.u64()
        name = utf16z(entry.take(72))
        if len(partitions) < MAX_PARTITIONS_SHOWN:
            partitions.append(
                {
                    "type_guid": type_guid,
                    "type": PARTITION_TYPES.get(type_guid, ""),
                    "unique_guid": unique,
                    "starting_lba": start,
                    "ending_lba": end,
                    "attributes": attributes,
                    "name": name,
                }
            )
    fields: dict[str, Any] = {
        "revision": revision,
        "header_size": header_size,
        "my_lba": my_lba,
        "alternate_lba": alternate_lba,
        "first_usable_lba": first_usable,
        "last_usable_lba": last_usable,
        "disk_guid": disk_guid,
        "partition_count": count,
        "partitions": partitions,
    }
    names = ", ".join(p["name"] or p["type"] or p["type_guid"] for p in partitions)
    return clip(f"disk {disk_guid}, {count} partitions: {names}"), fields
