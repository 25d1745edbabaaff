"""Human-readable decoding of event data, and whether a digest covers the data.

The event type selects the decoder, and it is untrusted (not covered by any
digest): a decoded summary only says what the bytes *claim* to be. A decoder
never raises for malformed data; the summary then says the data does not
decode.

``digest_verified`` (computed on demand, never during parsing):

- ``True``: every logged digest (of a bank soapattest implements) equals the
  hash of the data, or of the spec-defined part of it;
- ``False``: the PFP defines the digest over the data and it does not match:
  the decoded text is *not* what was measured;
- ``None``: the digest is not defined over the event data (boot applications
  measure the PE image, blobs the firmware volume, EV_NO_ACTION is never
  extended...), or firmware commonly measures something else.

Rules per type (PFP 1.05 section 10.4.1; TCG EFI Platform spec 1.22):

- strict, digest = H(data): EV_SEPARATOR, EV_ACTION, EV_EFI_ACTION,
  EV_OMIT_BOOT_DEVICE_EVENTS, EV_EFI_VARIABLE_DRIVER_CONFIG,
  EV_EFI_VARIABLE_BOOT2, EV_EFI_GPT_EVENT;
- strict, digest = H(UEFI_VARIABLE_DATA) or H(VariableData):
  EV_EFI_VARIABLE_BOOT (EDK2 and most firmware hash only VariableData, as the
  EFI Platform spec said) and EV_EFI_VARIABLE_AUTHORITY (also accepting shim's
  padded structure, see ``_variable_candidates``);
- lenient (``True`` when it matches, else ``None``): EV_IPL (the whole text,
  without its NUL, or the command after grub's ``grub_cmd: `` /
  ``kernel_cmdline: `` prefix), EV_S_CRTM_VERSION, EV_EVENT_TAG,
  EV_COMPACT_HASH, EV_NONHOST_INFO, EV_EFI_GPT_EVENT2, EV_EFI_SPDM_DEVICE_*.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.eventlog import efi
from soapattest.tpm.eventlog.cursor import (
    Cursor,
    DecodeError,
    clip,
    guid_text,
    printable_ascii,
    printable_utf16,
    text_prefix,
)
from soapattest.tpm.eventlog.eventtypes import EventType as T
from soapattest.tpm.eventlog.gpt import decode_gpt
from soapattest.tpm.eventlog.model import EventLog, UntrustedEvent
from soapattest.tpm.eventlog.noaction import decode_no_action


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """What an event's data claims (``summary``, ``fields``) and whether its digest covers it."""

    summary: str
    fields: dict[str, object] = field(hash=False)
    digest_verified: bool | None


Decoded = tuple[str, dict[str, Any]]

GRUB_PREFIXES = (b"grub_cmd: ", b"kernel_cmdline: ", b"grub_kernel_cmdline ", b"module_cmdline: ")
MAX_PADDING = 8
TAG_NAMES = {0x8F3B22EC: "Linux initrd", 0x8F3B22ED: "LOADED_IMAGE::LoadOptions"}
_STRICT_DATA = frozenset(
    {
        T.EV_SEPARATOR,
        T.EV_ACTION,
        T.EV_EFI_ACTION,
        T.EV_OMIT_BOOT_DEVICE_EVENTS,
        T.EV_EFI_VARIABLE_DRIVER_CONFIG,
        T.EV_EFI_VARIABLE_BOOT2,
        T.EV_EFI_GPT_EVENT,
    }
)
_STRICT_VARIABLE = frozenset({T.EV_EFI_VARIABLE_BOOT, T.EV_EFI_VARIABLE_AUTHORITY})
STRICT_TYPES = frozenset(int(t) for t in _STRICT_DATA | _STRICT_VARIABLE)
"""Event types whose digest the PFP defines over the data: only these can be found lying."""
_LENIENT_DATA = frozenset(
    {
        T.EV_S_CRTM_VERSION,
        T.EV_EVENT_TAG,
        T.EV_COMPACT_HASH,
        T.EV_NONHOST_INFO,
        T.EV_EFI_GPT_EVENT2,
        T.EV_EFI_SPDM_DEVICE_POLICY,
        T.EV_EFI_SPDM_DEVICE_AUTHORITY,
    }
)


def decode_event(event: UntrustedEvent, *, uintn_bytes: int = 8) -> DecodedEvent:
    """Decode ``event``'s data after its (untrusted) type; never raises.

    ``uintn_bytes`` is the platform's UINTN size (``EventLog.uintn_bytes``; 8
    unless the SpecID says 32-bit); image-load events try the other size when
    the data does not fit. Returns a :class:`DecodedEvent`.
    """
    try:
        summary, fields = decode_data(event.untrusted_type, event.data, uintn_bytes)
    except DecodeError as exc:
        summary, fields = _undecodable(event, str(exc))
    except (ValueError, IndexError, KeyError, OverflowError, struct.error) as exc:
        # Safety net: the decoders only raise DecodeError (the fuzz tests check it).
        summary, fields = _undecodable(event, f"{type(exc).__name__}: {exc}")
    return DecodedEvent(summary, fields, digest_verified(event))


def decode_log(log: EventLog) -> tuple[DecodedEvent, ...]:
    """:func:`decode_event` of every event of ``log``, with the log's UINTN size."""
    size = log.uintn_bytes
    return tuple(decode_event(e, uintn_bytes=size) for e in log.events)


def decode_data(event_type: int, data: bytes, uintn_bytes: int = 8) -> Decoded:
    """Summary and fields of ``data`` read as ``event_type``; raises only DecodeError."""
    decoder = _DECODERS.get(event_type)
    if decoder is None:
        return _generic(data)
    return decoder(data, uintn_bytes)


def digest_verified(event: UntrustedEvent) -> bool | None:
    """Whether the logged digests are the hash of the data (see the module rules)."""
    return data_digest_verdict(event.untrusted_type, event.data, event.digests.items())


def data_digest_verdict(
    event_type: int, data: bytes, digests: Iterable[tuple[str, bytes]]
) -> bool | None:
    """:func:`digest_verified` of an event given as its fields: type, data, ``(bank, digest)``.

    ``digests`` are the event's logged digests (banks soapattest does not
    implement are ignored). Returns ``True``, ``False`` or ``None`` as the
    module docstring says.
    """
    if event_type in _STRICT_DATA:
        return _all_match(digests, [data])
    if event_type in _STRICT_VARIABLE:
        return _all_match(digests, _variable_candidates(data))
    if event_type == T.EV_IPL:
        return _all_match(digests, _ipl_candidates(data)) or None
    if event_type in _LENIENT_DATA:
        if event_type in (T.EV_EFI_SPDM_DEVICE_POLICY, T.EV_EFI_SPDM_DEVICE_AUTHORITY):
            return _all_match(digests, _variable_candidates(data)) or None
        return _all_match(digests, [data]) or None
    return None


def digest_contradicts_data(
    event_type: int, data: bytes, digests: Iterable[tuple[str, bytes]]
) -> bool:
    """True exactly when :func:`data_digest_verdict` is ``False`` (the label is false).

    Only the strict types (whose digest the PFP defines over the data) can
    contradict their data; for every other type this returns ``False`` at once.
    """
    if event_type not in STRICT_TYPES:
        return False
    return data_digest_verdict(event_type, data, digests) is False


_HASHLIB: dict[str, Callable[[bytes], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def _all_match(digests: Iterable[tuple[str, bytes]], candidates: list[bytes]) -> bool | None:
    """True when one candidate hashes to every logged digest; None without digests."""
    checks: list[tuple[Callable[[bytes], Any], bytes]] = []
    for bank, digest in digests:
        new = _HASHLIB.get(bank)
        if new is None:
            algorithm = hash_by_name(bank)
            if algorithm is None:
                continue
            new = algorithm.new
        checks.append((new, digest))
    if not checks:
        return None
    for candidate in candidates:
        for new, digest in checks:
            if new(candidate).digest() != digest:
                break
        else:
            return True
    return False


def _variable_candidates(data: bytes) -> list[bytes]:
    """UEFI_VARIABLE_DATA, its VariableData, and shim's padded form.

    shim (15.x) logs its EV_EFI_VARIABLE_AUTHORITY events with 6 bytes after
    the declared structure and hashes all but the last one; a digest over the
    declared structure plus at most ``MAX_PADDING`` trailing bytes still covers
    everything the decoder shows.
    """
    candidates = [data]
    try:
        _guid, _name, value, trailing = efi.split_variable(data)
    except DecodeError:
        return candidates
    candidates.append(value)
    if 0 < trailing <= MAX_PADDING:
        declared = len(data) - trailing
        candidates.extend(data[:k] for k in range(declared, len(data)))
    return candidates


def _ipl_candidates(data: bytes) -> list[bytes]:
    text = data.rstrip(b"\x00")
    candidates = [data, text]
    for prefix in GRUB_PREFIXES:
        if text.startswith(prefix):
            candidates.append(text[len(prefix) :])
    return candidates


def _undecodable(event: UntrustedEvent, reason: str) -> Decoded:
    fields: dict[str, Any] = {
        "error": reason,
        "size": len(event.data),
        "data_prefix": event.data[:64].hex(),
    }
    return clip(f"data does not decode as {event.type_name}: {reason}"), fields


# ---------------------------------------------------------------------------
# Decoders: (data, uintn_bytes) -> (summary, fields); raise DecodeError only.


def _generic(data: bytes, _uintn: int = 8) -> Decoded:
    text = printable_ascii(data)
    if text is not None:
        return clip(repr(text)), {"text": text}
    wide = printable_utf16(data)
    if wide is not None:
        return clip(repr(wide)), {"text": wide}
    prefix = text_prefix(data)
    if prefix is not None:
        rest = len(data) - len(prefix) - 1
        return clip(f"{prefix!r} + {rest} bytes"), {"text": prefix, "size": len(data)}
    more = "..." if len(data) > 32 else ""
    return f"{len(data)} bytes {data[:32].hex()}{more}", {"size": len(data)}


def _separator(data: bytes, _uintn: int) -> Decoded:
    if len(data) != 4:
        raise DecodeError(f"separator data is {len(data)} bytes, not 4")
    value = int.from_bytes(data, "little")
    fields: dict[str, Any] = {"value": f"0x{value:08x}", "error": value == 1}
    if value == 0:
        return "separator", fields
    if value == 1:
        return "ERROR separator (0x00000001): the firmware reports a measurement error", fields
    if value == 0xFFFFFFFF:
        return "separator (0xffffffff, TCG 1.2 BIOS style)", fields
    text = printable_ascii(data)
    if text is not None:
        return f"separator {text!r} (0x{value:08x})", fields
    return f"non-standard separator value 0x{value:08x}", fields


def _text(data: bytes, _uintn: int) -> Decoded:
    text = printable_ascii(data)
    if text is None:
        raise DecodeError("the data is not printable ASCII text")
    return clip(text), {"text": text}


def _variable(data: bytes, _uintn: int) -> Decoded:
    return efi.decode_variable(data)


def _authority(data: bytes, _uintn: int) -> Decoded:
    return efi.decode_variable(data, authority=True)


def _image(data: bytes, uintn: int) -> Decoded:
    return efi.decode_image_load(data, uintn)


def _gpt(data: bytes, _uintn: int) -> Decoded:
    return decode_gpt(data)


def _blob(data: bytes, _uintn: int) -> Decoded:
    return efi.decode_blob(data)


def _blob2(data: bytes, _uintn: int) -> Decoded:
    return efi.decode_blob2(data)


def _blob_or_text(data: bytes, _uintn: int) -> Decoded:
    """EV_POST_CODE / EV_S_CRTM_CONTENTS: a firmware blob (base, length) or a string."""
    if len(data) == 16:
        return efi.decode_blob(data)
    return _generic(data)


def _handoff(data: bytes, uintn: int) -> Decoded:
    return efi.decode_handoff_tables(data, with_description=False, uintn=uintn)


def _handoff2(data: bytes, uintn: int) -> Decoded:
    return efi.decode_handoff_tables(data, with_description=True, uintn=uintn)


def _crtm_version(data: bytes, _uintn: int) -> Decoded:
    if data and not any(data):
        return "(empty version string)", {"version": ""}
    wide = printable_utf16(data)
    if wide is not None:
        return clip(wide), {"version": wide}
    text = printable_ascii(data)
    if text is not None:
        return clip(text), {"version": text}
    if len(data) == 16:
        guid = guid_text(data)
        return f"GUID {guid}", {"version_guid": guid}
    prefix = text_prefix(data)
    if prefix is not None:
        return clip(f"{prefix} (+{len(data) - len(prefix) - 1} bytes)"), {"version": prefix}
    raise DecodeError("not a UTF-16/ASCII version string or a GUID")


def _ipl(data: bytes, _uintn: int) -> Decoded:
    text = printable_ascii(data)
    if text is None:
        text = printable_utf16(data)
    if text is None:
        return _generic(data)
    fields: dict[str, Any] = {"text": text}
    for prefix in GRUB_PREFIXES:
        name = prefix.decode("ascii")
        if text.startswith(name):
            fields["kind"] = name.rstrip(": ")
            fields["command"] = text[len(name) :]
    return clip(text), fields


def _event_tag(data: bytes, _uintn: int) -> Decoded:
    c = Cursor(data)
    tag = c.u32("taggedEventID")
    payload = c.take(c.u32("taggedEventDataSize"), "taggedEventData")
    if c.remaining:
        raise DecodeError("trailing bytes after TCG_PCClientTaggedEvent")
    name = TAG_NAMES.get(tag, "")
    text = printable_ascii(payload)
    fields: dict[str, Any] = {"tag": f"0x{tag:08x}", "tag_name": name, "size": len(payload)}
    if text is not None:
        fields["text"] = text
    label = name or f"tag 0x{tag:08x}"
    return clip(
        f"{label}: {text!r}" if text is not None else f"{label}, {len(payload)} bytes"
    ), fields


def _no_action(data: bytes, _uintn: int) -> Decoded:
    return decode_no_action(data)


_DECODERS: dict[int, Callable[[bytes, int], Decoded]] = {
    T.EV_SEPARATOR: _separator,
    T.EV_ACTION: _text,
    T.EV_EFI_ACTION: _text,
    T.EV_OMIT_BOOT_DEVICE_EVENTS: _text,
    T.EV_EFI_HCRTM_EVENT: _text,
    T.EV_EFI_VARIABLE_DRIVER_CONFIG: _variable,
    T.EV_EFI_VARIABLE_BOOT: _variable,
    T.EV_EFI_VARIABLE_BOOT2: _variable,
    T.EV_EFI_VARIABLE_AUTHORITY: _authority,
    T.EV_EFI_SPDM_DEVICE_POLICY: _variable,
    T.EV_EFI_SPDM_DEVICE_AUTHORITY: _authority,
    T.EV_EFI_BOOT_SERVICES_APPLICATION: _image,
    T.EV_EFI_BOOT_SERVICES_DRIVER: _image,
    T.EV_EFI_RUNTIME_SERVICES_DRIVER: _image,
    T.EV_EFI_GPT_EVENT: _gpt,
    T.EV_EFI_GPT_EVENT2: _gpt,
    T.EV_EFI_PLATFORM_FIRMWARE_BLOB: _blob,
    T.EV_EFI_PLATFORM_FIRMWARE_BLOB2: _blob2,
    T.EV_POST_CODE2: _blob2,
    T.EV_POST_CODE: _blob_or_text,
    T.EV_S_CRTM_CONTENTS: _blob_or_text,
    T.EV_S_CRTM_VERSION: _crtm_version,
    T.EV_EFI_HANDOFF_TABLES: _handoff,
    T.EV_EFI_HANDOFF_TABLES2: _handoff2,
    T.EV_IPL: _ipl,
    T.EV_EVENT_TAG: _event_tag,
    T.EV_NO_ACTION: _no_action,
}
