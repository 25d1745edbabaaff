"""EV_NO_ACTION event data (PFP 1.05 section 10.4.5): never extended, informative only.

Recognised by the 16-byte signature that starts the data: "Spec ID Event03",
"StartupLocality", "SP800-155 Event" / "SP800-155 Event3" (platform and
reference-manifest identifiers), "NvIndexInstance", "NvIndexDynamic".
"""

from __future__ import annotations

from typing import Any

from soapattest.errors import EventLogSpecIdError
from soapattest.tpm.eventlog.cursor import Cursor, DecodeError, clip, printable_ascii
from soapattest.tpm.eventlog.specid import SPEC_ID_SIGNATURE, parse_spec_id

STARTUP_LOCALITY = b"StartupLocality\x00"
SP800_155 = b"SP800-155 Event\x00"
SP800_155_3 = b"SP800-155 Event3"
NV_INDEX_SIGNATURES = (b"NvIndexInstance\x00", b"NvIndexDynamic\x00\x00")


def decode_no_action(data: bytes) -> tuple[str, dict[str, Any]]:
    """Summary and fields of EV_NO_ACTION data; raises DecodeError when malformed."""
    head = data[:16]
    if head == SPEC_ID_SIGNATURE:
        return _spec_id(data)
    if head == STARTUP_LOCALITY:
        if len(data) != 17:
            raise DecodeError(f"StartupLocality event is {len(data)} bytes, not 17")
        locality = data[16]
        hint = " (H-CRTM)" if locality == 4 else ""
        return f"StartupLocality {locality}{hint}", {"startup_locality": locality}
    if head in (SP800_155, SP800_155_3):
        return _sp800_155(data, event3=head == SP800_155_3)
    if head in NV_INDEX_SIGNATURES:
        name = head.rstrip(b"\x00").decode("ascii")
        return f"{name} ({len(data) - 16} bytes)", {"signature": name, "size": len(data)}
    text = printable_ascii(data.split(b"\x00", 1)[0]) if data else None
    if text:
        return clip(f"'{text}' ({len(data)} bytes)"), {"signature": text, "size": len(data)}
    return f"{len(data)} bytes", {"size": len(data)}


def _spec_id(data: bytes) -> tuple[str, dict[str, Any]]:
    try:
        spec = parse_spec_id(data)
    except EventLogSpecIdError as exc:
        raise DecodeError(exc.reason) from None
    algorithms = [
        {
            "alg": f"0x{a.alg:04x}",
            "name": a.name or "unknown",
            "digest_size": a.digest_size,
        }
        for a in spec.algorithms
    ]
    fields: dict[str, Any] = {
        "platform_class": spec.platform_class,
        "spec_version": f"{spec.spec_version_major}.{spec.spec_version_minor}",
        "spec_errata": spec.spec_errata,
        "uintn_size": spec.uintn_size,
        "algorithms": algorithms,
        "vendor_info": spec.vendor_info.hex(),
    }
    banks = ", ".join(str(a["name"]) for a in algorithms)
    return f"Spec ID Event03 (PFP {fields['spec_version']}, banks {banks})", fields


def _sp800_155(data: bytes, *, event3: bool) -> tuple[str, dict[str, Any]]:
    """TCG_Sp800_155_PlatformId_Event2 / Event3 (PFP 1.05 10.4.5.2, 1.06 10.4.5.3)."""
    c = Cursor(data, 16)
    fields: dict[str, Any] = {"vendor_id": c.u32("VendorId")}
    fields["reference_manifest_guid"] = c.guid("ReferenceManifestGuid")
    for key in (
        "platform_manufacturer",
        "platform_model",
        "platform_version",
        "firmware_manufacturer",
    ):
        fields[key] = _short_string(c)
    fields["firmware_manufacturer_id"] = c.u32("FirmwareManufacturerId")
    fields["firmware_version"] = _short_string(c)
    if event3:
        fields["rim_locator_type"] = c.u32("RIMLocatorType")
        fields["rim_locator"] = _locator(c.take(c.u32("RIMLocatorLength"), "RIMLocator"))
        fields["platform_cert_locator_type"] = c.u32("PlatformCertLocatorType")
        fields["platform_cert_locator"] = _locator(
            c.take(c.u32("PlatformCertLocatorLength"), "PlatformCertLocator")
        )
    name = "SP800-155 Event3" if event3 else "SP800-155 Event"
    summary = (
        f"{name}: {fields['platform_manufacturer']} {fields['platform_model']}, firmware "
        f"{fields['firmware_manufacturer']} {fields['firmware_version']}"
    )
    return clip(summary), fields


def _short_string(c: Cursor) -> str:
    raw = c.take(c.u8("string size"), "string")
    return raw.decode("utf-8", "replace").rstrip("\x00")


def _locator(raw: bytes) -> str:
    text = printable_ascii(raw)
    return text if text is not None else raw.hex()
