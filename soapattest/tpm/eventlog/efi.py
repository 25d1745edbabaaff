"""Decoders of UEFI structures found in event data (PFP 1.05 section 10.2.x / 10.4.x).

Every function takes untrusted bytes and returns ``(summary, fields)`` or raises
:class:`~soapattest.tpm.eventlog.cursor.DecodeError`; ``fields`` hold only
JSON-friendly values (str, int, bool, lists and dicts of them).
"""

from __future__ import annotations

import warnings
from typing import Any

from soapattest.tpm.eventlog.cursor import Cursor, DecodeError, clip, guid_text, utf16z
from soapattest.tpm.eventlog.devicepath import device_path_text

EFI_GLOBAL_VARIABLE = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
EFI_IMAGE_SECURITY_DATABASE = "d719b2cb-3d3a-4596-a3bc-dad00e67656f"
SHIM_LOCK = "605dab50-e046-4300-abb6-3dd810dd8b23"

KNOWN_GUIDS = {
    EFI_GLOBAL_VARIABLE: "EFI_GLOBAL_VARIABLE",
    EFI_IMAGE_SECURITY_DATABASE: "EFI_IMAGE_SECURITY_DATABASE",
    SHIM_LOCK: "SHIM_LOCK",
    "c1c41626-504c-4092-aca9-41f936934328": "EFI_CERT_SHA256",
    "a5c059a1-94e4-4aa7-87b5-ab155c2bf072": "EFI_CERT_X509",
    "3c5766e8-269c-4e34-aa14-ed776e85b3b6": "EFI_CERT_RSA2048",
    "826ca512-cf10-4ac9-b187-be01496631bd": "EFI_CERT_SHA1",
    "0b6e5233-a65c-44c9-9407-d9ab83bfc8bd": "EFI_CERT_SHA224",
    "ff3e5307-9fd0-48c9-85f1-8ad56c701e01": "EFI_CERT_SHA384",
    "093e0fae-a6c4-4f50-9f1b-d41e2b89c19a": "EFI_CERT_SHA512",
    "3bd2a492-96c0-4079-b420-fcf98ef103ed": "EFI_CERT_X509_SHA256",
    "7076876e-80c2-4ee6-aad2-28b349a6865b": "EFI_CERT_X509_SHA384",
    "446dbf63-2502-4cda-bcfa-2465d2b0fe9d": "EFI_CERT_X509_SHA512",
    "eb9d2d30-2d88-11d3-9a16-0090273fc14d": "ACPI_TABLE",
    "8868e871-e4f1-11d3-bc22-0080c73c8881": "ACPI_20_TABLE",
    "eb9d2d31-2d88-11d3-9a16-0090273fc14d": "SMBIOS_TABLE",
    "f2fd1544-9794-4a2c-992e-e5bbcf20e394": "SMBIOS3_TABLE",
}
_CERT_X509 = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"
_HASH_TYPES = {
    "c1c41626-504c-4092-aca9-41f936934328",
    "826ca512-cf10-4ac9-b187-be01496631bd",
    "0b6e5233-a65c-44c9-9407-d9ab83bfc8bd",
    "ff3e5307-9fd0-48c9-85f1-8ad56c701e01",
    "093e0fae-a6c4-4f50-9f1b-d41e2b89c19a",
}
SIGNATURE_DB_NAMES = frozenset({"PK", "KEK", "db", "dbx", "dbt", "dbr", "MokList", "MokListX"})
MAX_SIGNATURES = 4096
_BOOL_VARIABLES = frozenset({"SecureBoot", "SetupMode", "AuditMode", "DeployedMode"})

Decoded = tuple[str, dict[str, Any]]


def guid_name(guid: str) -> str:
    """``guid`` with its well-known name, e.g. ``EFI_GLOBAL_VARIABLE``."""
    name = KNOWN_GUIDS.get(guid)
    return f"{name} ({guid})" if name else guid


# ---------------------------------------------------------------------------
# UEFI_VARIABLE_DATA: EV_EFI_VARIABLE_DRIVER_CONFIG / _BOOT / _BOOT2 / _AUTHORITY


def split_variable(data: bytes) -> tuple[str, str, bytes, int]:
    """(vendor GUID, name, VariableData, trailing byte count) of a UEFI_VARIABLE_DATA."""
    c = Cursor(data)
    guid = c.guid("VariableName")
    name_chars = c.u64("UnicodeNameLength")
    data_len = c.u64("VariableDataLength")
    if name_chars > c.remaining // 2:
        raise DecodeError(f"UnicodeNameLength {name_chars} overruns the event")
    name = utf16z(c.take(2 * name_chars, "UnicodeName"))
    value = c.take(data_len, "VariableData")
    return guid, name, value, c.remaining


def decode_variable(data: bytes, *, authority: bool = False) -> Decoded:
    """A UEFI_VARIABLE_DATA and, for well-known variables, its value."""
    guid, name, value, trailing = split_variable(data)
    fields: dict[str, Any] = {
        "variable_guid": guid,
        "variable_name": name,
        "variable_data_size": len(value),
    }
    if trailing:
        fields["trailing_bytes"] = trailing
    detail = ""
    try:
        detail = _variable_value(guid, name, value, authority, fields)
    except DecodeError as exc:
        fields["value_error"] = str(exc)
        detail = "value does not decode"
    vendor = KNOWN_GUIDS.get(guid, guid)
    summary = f"{name} ({vendor})" + (f": {detail}" if detail else f", {len(value)} bytes")
    return summary, fields


def _variable_value(
    guid: str, name: str, value: bytes, authority: bool, fields: dict[str, Any]
) -> str:
    if authority:
        detail = _authority(value, fields)
        if detail:
            return detail
    if name in _BOOL_VARIABLES and len(value) == 1:
        fields["value"] = value[0]
        return (
            "enabled" if value[0] == 1 else ("disabled" if value[0] == 0 else f"0x{value[0]:02x}")
        )
    if name in SIGNATURE_DB_NAMES or (guid == EFI_IMAGE_SECURITY_DATABASE):
        lists = signature_lists(value)
        fields["signature_lists"] = lists
        return _signature_summary(lists)
    if guid == EFI_GLOBAL_VARIABLE and name == "BootOrder":
        if len(value) % 2:
            raise DecodeError("BootOrder has an odd length")
        order = [
            f"Boot{int.from_bytes(value[i : i + 2], 'little'):04X}" for i in range(0, len(value), 2)
        ]
        fields["boot_order"] = order
        return ", ".join(order) if order else "empty"
    if guid == EFI_GLOBAL_VARIABLE and len(name) == 8 and name.startswith("Boot"):
        option = load_option(value)
        fields["load_option"] = option
        return clip(f"{option['description']} {option['device_path']}".strip())
    if name == "SbatLevel":
        text = value.decode("ascii", "replace").strip("\x00")
        fields["value"] = text
        return clip(" ".join(text.split()))
    if len(value) == 1:
        fields["value"] = value[0]
        return f"0x{value[0]:02x}"
    return ""


def _authority(value: bytes, fields: dict[str, Any]) -> str:
    """EV_EFI_VARIABLE_AUTHORITY: an EFI_SIGNATURE_DATA (owner GUID + cert), or a bare cert."""
    if len(value) > 18 and value[16] == 0x30 and value[17] in (0x81, 0x82, 0x83):
        fields["signature_owner"] = guid_text(value[:16])
        cert = certificate_fields(value[16:])
    elif len(value) > 2 and value[0] == 0x30 and value[1] in (0x81, 0x82, 0x83):
        cert = certificate_fields(value)
    else:
        return ""
    fields["certificate"] = cert
    return clip(f"certificate {cert.get('subject', '(does not parse)')}")


def signature_lists(value: bytes) -> list[dict[str, Any]]:
    """EFI_SIGNATURE_LIST entries: type, owner and content (cert subject / hash) of each."""
    lists: list[dict[str, Any]] = []
    c = Cursor(value)
    shown = 0
    while c.remaining:
        start = c.pos
        sig_type = c.guid("SignatureType")
        list_size = c.u32("SignatureListSize")
        header_size = c.u32("SignatureHeaderSize")
        sig_size = c.u32("SignatureSize")
        if list_size < 28 or list_size > c.remaining + 28:
            raise DecodeError(f"SignatureListSize {list_size} is invalid")
        body = Cursor(value, c.pos, start + list_size)
        body.take(header_size, "SignatureHeader")
        if sig_size < 16 or body.remaining % sig_size:
            raise DecodeError(f"SignatureSize {sig_size} does not divide the list")
        entries: list[dict[str, Any]] = []
        count = body.remaining // sig_size
        for _ in range(count):
            owner = body.guid("SignatureOwner")
            payload = body.take(sig_size - 16, "SignatureData")
            if shown >= MAX_SIGNATURES:
                continue
            shown += 1
            entry: dict[str, Any] = {"owner": owner}
            if sig_type == _CERT_X509:
                entry.update(certificate_fields(payload))
            elif sig_type in _HASH_TYPES:
                entry["hash"] = payload.hex()
            else:
                entry["data_size"] = len(payload)
            entries.append(entry)
        lists.append(
            {
                "type": KNOWN_GUIDS.get(sig_type, sig_type),
                "count": count,
                "signatures": entries,
            }
        )
        c.pos = start + list_size
    return lists


def _signature_summary(lists: list[dict[str, Any]]) -> str:
    if not lists:
        return "empty"
    parts = []
    for entry in lists:
        kind = str(entry["type"]).removeprefix("EFI_CERT_")
        if kind == "X509":
            subjects = [s.get("subject_cn") or s.get("subject", "?") for s in entry["signatures"]]
            parts.append(f"X509 {'; '.join(subjects)}")
        else:
            parts.append(f"{entry['count']} {kind}")
    return clip(", ".join(parts))


def certificate_fields(der: bytes) -> dict[str, Any]:
    """Subject, issuer, serial and SHA-256 fingerprint of a DER certificate (never raises)."""
    import hashlib

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    fields: dict[str, Any] = {"sha256": hashlib.sha256(der).hexdigest(), "size": len(der)}
    # Firmware certificates often bend RFC 5280 (negative serials, long country
    # names); cryptography warns about them: the warnings become a field.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cert = x509.load_der_x509_certificate(der)
            fields["subject"] = cert.subject.rfc4514_string()
            fields["issuer"] = cert.issuer.rfc4514_string()
            fields["serial"] = f"{cert.serial_number:x}"
            cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if cns:
                fields["subject_cn"] = str(cns[0].value)
        except (ValueError, TypeError, x509.InvalidVersion) as exc:
            fields["error"] = f"certificate does not parse: {exc}"
    if caught:
        fields["warnings"] = sorted({str(w.message) for w in caught})
    return fields


def load_option(value: bytes) -> dict[str, Any]:
    """EFI_LOAD_OPTION (UEFI 2.10 section 3.1.3) of a Boot#### variable."""
    c = Cursor(value)
    attributes = c.u32("Attributes")
    path_len = c.u16("FilePathListLength")
    rest = c.rest()
    end = len(rest) - len(rest) % 2
    for i in range(0, end, 2):
        if rest[i] == 0 and rest[i + 1] == 0:
            end = i
            break
    else:
        raise DecodeError("Description is not NUL-terminated")
    description = utf16z(rest[: end + 2])
    tail = Cursor(rest, end + 2)
    path = tail.take(path_len, "FilePathList")
    optional = tail.rest()
    return {
        "attributes": attributes,
        "active": bool(attributes & 1),
        "description": description,
        "device_path": device_path_text(path),
        "optional_data_size": len(optional),
    }


# ---------------------------------------------------------------------------
# UEFI_IMAGE_LOAD_EVENT: EV_EFI_BOOT_SERVICES_APPLICATION / _DRIVER, RUNTIME_SERVICES_DRIVER


def decode_image_load(data: bytes, uintn: int = 8) -> Decoded:
    """UEFI_IMAGE_LOAD_EVENT (PFP 10.2.3).

    The UINTN size comes from the SpecID; the other size is tried when the
    device path length does not fit exactly. Bytes after the device path
    (shim logs some) are reported as ``trailing_bytes``.
    """
    tolerant: Decoded | None = None
    for size in (uintn, 12 - uintn):
        c = Cursor(data)
        try:
            location = c.u64("ImageLocationInMemory")
            length = c.uintn(size, "ImageLengthInMemory")
            link = c.uintn(size, "ImageLinkTimeAddress")
            path_len = c.uintn(size, "LengthOfDevicePath")
        except DecodeError:
            continue
        if path_len > c.remaining:
            continue
        path = device_path_text(c.take(path_len))
        fields: dict[str, Any] = {
            "image_location": location,
            "image_length": length,
            "link_time_address": link,
            "device_path": path,
        }
        summary = clip(path or "(no device path)")
        if not c.remaining:
            return summary, fields
        if tolerant is None:
            fields["trailing_bytes"] = c.remaining
            tolerant = (f"{summary} (+{c.remaining} trailing bytes)", fields)
    if tolerant is not None:
        return tolerant
    raise DecodeError("not a UEFI_IMAGE_LOAD_EVENT (LengthOfDevicePath overruns the event)")


# ---------------------------------------------------------------------------
# Firmware blobs and handoff tables


def decode_blob(data: bytes) -> Decoded:
    """UEFI_PLATFORM_FIRMWARE_BLOB: base and length."""
    c = Cursor(data)
    base, length = c.u64("BlobBase"), c.u64("BlobLength")
    if c.remaining:
        raise DecodeError("trailing bytes after UEFI_PLATFORM_FIRMWARE_BLOB")
    return f"base 0x{base:x}, length 0x{length:x}", {"base": base, "length": length}


def decode_blob2(data: bytes) -> Decoded:
    """UEFI_PLATFORM_FIRMWARE_BLOB2: description, base and length."""
    c = Cursor(data)
    description = c.take(c.u8("BlobDescriptionSize"), "BlobDescription")
    base, length = c.u64("BlobBase"), c.u64("BlobLength")
    if c.remaining:
        raise DecodeError("trailing bytes after UEFI_PLATFORM_FIRMWARE_BLOB2")
    text = description.decode("ascii", "replace").rstrip("\x00")
    fields = {"description": text, "base": base, "length": length}
    return clip(f"{text} (base 0x{base:x}, length 0x{length:x})"), fields


def decode_handoff_tables(data: bytes, *, with_description: bool, uintn: int = 8) -> Decoded:
    """UEFI_HANDOFF_TABLE_POINTERS(2): the configuration tables handed to the OS."""
    c = Cursor(data)
    description = ""
    if with_description:
        description = c.take(c.u8("TableDescriptionSize")).decode("ascii", "replace").rstrip("\x00")
    count = c.u64("NumberOfTables") if with_description else c.uintn(uintn, "NumberOfTables")
    if count * (16 + uintn) != c.remaining:
        raise DecodeError(f"NumberOfTables {count} does not match the event size")
    tables: list[dict[str, Any]] = []
    for _ in range(count):
        guid = c.guid("VendorGuid")
        tables.append({"guid": guid, "name": KNOWN_GUIDS.get(guid, ""), "address": c.uintn(uintn)})
    names = ", ".join(t["name"] or t["guid"] for t in tables)
    fields: dict[str, Any] = {"tables": tables}
    if with_description:
        fields["description"] = description
    return clip(f"{description + ': ' if description else ''}{names}"), fields
