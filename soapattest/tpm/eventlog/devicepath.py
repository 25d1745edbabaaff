"""UEFI device paths (UEFI 2.10 section 10.3) rendered as text, bounded.

Each node is ``Type (UINT8), SubType (UINT8), Length (UINT16, >= 4)`` then
node data. Known nodes render the way the UEFI shell prints them
(``PciRoot(0x0)/Pci(0x1,0x0)/HD(1,GPT,<guid>,0x800,0x100000)/\\EFI\\BOOT\\BOOTX64.EFI``);
unknown nodes as ``Path(type,subtype,hex)``. A malformed node ends the path
with ``<malformed>``; rendering never raises.
"""

from __future__ import annotations

from soapattest.tpm.eventlog.cursor import Cursor, DecodeError, clip, guid_text, utf16z

MAX_NODES = 64
MAX_TEXT = 1024

_HW, _ACPI, _MSG, _MEDIA, _BBS, _END = 1, 2, 3, 4, 5, 0x7F
_PNP_PCI_ROOT = 0x0A0341D0
_PNP_PCIE_ROOT = 0x0A0841D0


def device_path_text(raw: bytes) -> str:
    """Text of a device path (one or more instances); never raises."""
    parts: list[str] = []
    pos = 0
    for _ in range(MAX_NODES):
        if len(raw) - pos < 4:
            if pos < len(raw):
                parts.append("<malformed>")
            break
        ntype, subtype = raw[pos], raw[pos + 1]
        length = raw[pos + 2] | raw[pos + 3] << 8
        if length < 4 or length > len(raw) - pos:
            parts.append("<malformed>")
            break
        body = raw[pos + 4 : pos + length]
        pos += length
        if ntype == _END:
            if subtype == 0xFF:
                break
            parts.append(",")  # end of this instance, another follows
            continue
        try:
            parts.append(_node_text(ntype, subtype, body))
        except DecodeError:
            parts.append(_unknown(ntype, subtype, body))
    else:
        parts.append("...")
    text = ""
    for part in parts:
        if part == "," or not text or text.endswith(","):
            text += part
        else:
            text += "/" + part
    return clip(text, MAX_TEXT)


def _unknown(ntype: int, subtype: int, body: bytes) -> str:
    return f"Path({ntype},{subtype},{body[:64].hex()}{'...' if len(body) > 64 else ''})"


def _node_text(ntype: int, subtype: int, body: bytes) -> str:
    c = Cursor(body)
    if ntype == _HW:
        return _hardware(subtype, c, body)
    if ntype == _ACPI:
        return _acpi(subtype, c, body)
    if ntype == _MSG:
        return _messaging(subtype, c, body)
    if ntype == _MEDIA:
        return _media(subtype, c, body)
    if ntype == _BBS and subtype == 1:
        dev_type, status = c.u16(), c.u16()
        desc = c.rest().split(b"\x00", 1)[0].decode("ascii", "replace")
        return f"BBS(0x{dev_type:x},{desc},0x{status:x})"
    return _unknown(ntype, subtype, body)


def _hardware(subtype: int, c: Cursor, body: bytes) -> str:
    if subtype == 1:
        function, device = c.u8(), c.u8()
        return f"Pci(0x{device:x},0x{function:x})"
    if subtype == 3:
        mem_type, start, end = c.u32(), c.u64(), c.u64()
        return f"MemoryMapped(0x{mem_type:x},0x{start:x},0x{end:x})"
    if subtype == 4:
        guid = c.guid()
        extra = c.rest()
        return f"VenHw({guid}{',' + extra.hex() if extra else ''})"
    if subtype == 5:
        return f"Ctrl(0x{c.u32():x})"
    return _unknown(_HW, subtype, body)


def _eisa(hid: int) -> str:
    if hid & 0xFFFF != 0x41D0:
        return f"0x{hid:x}"
    return f"PNP{hid >> 16:04X}"


def _acpi(subtype: int, c: Cursor, body: bytes) -> str:
    if subtype == 1:
        hid, uid = c.u32(), c.u32()
        if hid == _PNP_PCI_ROOT:
            return f"PciRoot(0x{uid:x})"
        if hid == _PNP_PCIE_ROOT:
            return f"PcieRoot(0x{uid:x})"
        return f"Acpi({_eisa(hid)},0x{uid:x})"
    if subtype == 2:
        hid, uid, cid = c.u32(), c.u32(), c.u32()
        strings = [s.decode("ascii", "replace") for s in c.rest().split(b"\x00")[:3]]
        return f"AcpiEx({_eisa(hid)},{_eisa(cid)},0x{uid:x},{','.join(strings)})"
    if subtype == 3:
        return f"AcpiAdr(0x{c.u32():x})"
    return _unknown(_ACPI, subtype, body)


def _messaging(subtype: int, c: Cursor, body: bytes) -> str:
    if subtype == 1:
        primary, slave, lun = c.u8(), c.u8(), c.u16()
        return (
            f"Ata({'Secondary' if primary else 'Primary'},{'Slave' if slave else 'Master'},{lun})"
        )
    if subtype == 2:
        pun, lun = c.u16(), c.u16()
        return f"Scsi(0x{pun:x},0x{lun:x})"
    if subtype == 5:
        port, interface = c.u8(), c.u8()
        return f"USB(0x{port:x},0x{interface:x})"
    if subtype == 11:
        mac = c.take(32)
        if_type = c.u8()
        size = 6 if if_type in (0, 1) else 32
        return f"MAC({mac[:size].hex()},0x{if_type:x})"
    if subtype == 12:
        local = ".".join(str(b) for b in c.take(4))
        remote = ".".join(str(b) for b in c.take(4))
        return f"IPv4({remote},{local})"
    if subtype == 10:
        guid = c.guid()
        extra = c.rest()
        return f"VenMsg({guid}{',' + extra.hex() if extra else ''})"
    if subtype == 18:
        hba, mult, lun = c.u16(), c.u16(), c.u16()
        return f"Sata(0x{hba:x},0x{mult:x},0x{lun:x})"
    if subtype == 23:
        nsid = c.u32()
        eui = "-".join(f"{b:02X}" for b in c.take(8))
        return f"NVMe(0x{nsid:x},{eui})"
    if subtype == 24:
        return f"Uri({c.rest().decode('ascii', 'replace')})"
    if subtype == 29:
        return f"eMMC(0x{c.u8():x})"
    if subtype == 32:
        return f"VirtioFs({c.rest().hex()})"
    return _unknown(_MSG, subtype, body)


def _media(subtype: int, c: Cursor, body: bytes) -> str:
    if subtype == 1:
        number, start, size = c.u32(), c.u64(), c.u64()
        signature = c.take(16)
        _mbr_type, sig_type = c.u8(), c.u8()
        if sig_type == 2:
            sig = guid_text(signature)
            kind = "GPT"
        elif sig_type == 1:
            sig = f"0x{int.from_bytes(signature[:4], 'little'):08x}"
            kind = "MBR"
        else:
            sig, kind = signature.hex(), str(sig_type)
        return f"HD({number},{kind},{sig},0x{start:x},0x{size:x})"
    if subtype == 2:
        entry, start, size = c.u32(), c.u64(), c.u64()
        return f"CDROM(0x{entry:x},0x{start:x},0x{size:x})"
    if subtype == 3:
        guid = c.guid()
        extra = c.rest()
        return f"VenMedia({guid}{',' + extra.hex() if extra else ''})"
    if subtype == 4:
        return utf16z(c.rest())
    if subtype == 5:
        return f"Media({c.guid()})"
    if subtype == 6:
        return f"FvFile({c.guid()})"
    if subtype == 7:
        return f"Fv({c.guid()})"
    if subtype == 8:
        c.u32()
        start, end = c.u64(), c.u64()
        return f"Offset(0x{start:x},0x{end:x})"
    if subtype == 9:
        start, end = c.u64(), c.u64()
        disk_type = c.guid()
        return f"RamDisk(0x{start:x},0x{end:x},{disk_type})"
    return _unknown(_MEDIA, subtype, body)
