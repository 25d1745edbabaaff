"""A bounded little-endian cursor for the event *data* decoders.

Decoders of event data never raise to their caller: every read here checks the
bytes that remain and raises :class:`DecodeError`, which ``decode_event`` turns
into a "does not decode" summary.
"""

from __future__ import annotations

import struct
import uuid

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
# Firmware strings are Latin, Greek, Cyrillic...: a "UTF-16" string with CJK
# characters is far more likely binary data that happens to decode.
MAX_WIDE_CHAR = 0x800


class DecodeError(Exception):
    """Event data does not match the structure its (untrusted) type announces."""


class Cursor:
    """Reads fields from ``data[pos:end]``, refusing to read past ``end``."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else min(end, len(data))

    @property
    def remaining(self) -> int:
        """Bytes left before ``end``."""
        return self.end - self.pos

    def take(self, n: int, what: str = "bytes") -> bytes:
        """The next ``n`` bytes; DecodeError when fewer remain."""
        if n < 0 or n > self.end - self.pos:
            raise DecodeError(f"{what}: needs {n} bytes, {self.end - self.pos} remain")
        start = self.pos
        self.pos = start + n
        return self.data[start : self.pos]

    def u8(self, what: str = "UINT8") -> int:
        return self.take(1, what)[0]

    def u16(self, what: str = "UINT16") -> int:
        return int(_U16.unpack(self.take(2, what))[0])

    def u32(self, what: str = "UINT32") -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def u64(self, what: str = "UINT64") -> int:
        return int(_U64.unpack(self.take(8, what))[0])

    def uintn(self, size: int, what: str = "UINTN") -> int:
        return self.u32(what) if size == 4 else self.u64(what)

    def guid(self, what: str = "GUID") -> str:
        return guid_text(self.take(16, what))

    def rest(self) -> bytes:
        return self.take(self.remaining)


def guid_text(raw: bytes) -> str:
    """An EFI_GUID (mixed-endian, 16 bytes) as the usual lowercase text form."""
    return str(uuid.UUID(bytes_le=raw))


def utf16z(raw: bytes) -> str:
    """UTF-16LE text up to the first NUL character; DecodeError when invalid."""
    end = len(raw) - (len(raw) % 2)
    for i in range(0, end, 2):
        if raw[i] == 0 and raw[i + 1] == 0:
            end = i
            break
    try:
        return raw[:end].decode("utf-16-le")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"invalid UTF-16 text: {exc.reason}") from None


def printable_ascii(raw: bytes) -> str | None:
    """``raw`` as text when it is printable ASCII (one trailing NUL allowed), else None."""
    text = raw[:-1] if raw.endswith(b"\x00") else raw
    if not text or any((b < 0x20 and b not in (0x09, 0x0A, 0x0D)) or b > 0x7E for b in text):
        return None
    return text.decode("ascii")


def printable_utf16(raw: bytes) -> str | None:
    """``raw`` as text when it is printable UTF-16LE (NUL-terminated or not), else None."""
    if len(raw) % 2 and raw.endswith(b"\x00"):
        raw = raw[:-1]  # systemd-boot logs UTF-16 load options with one extra NUL byte
    if len(raw) < 2 or len(raw) % 2:
        return None
    try:
        text = utf16z(raw)
    except DecodeError:
        return None
    if not text or not text.isprintable() or max(map(ord, text)) >= MAX_WIDE_CHAR:
        return None
    return text


def text_prefix(raw: bytes, minimum: int = 3) -> str | None:
    """Printable ASCII that starts ``raw`` and ends at its first NUL (>= ``minimum`` chars)."""
    head, sep, _tail = raw.partition(b"\x00")
    if not sep or len(head) < minimum:
        return None
    return printable_ascii(head)


def clip(text: str, limit: int = 160) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
