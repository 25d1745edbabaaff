"""A bounded, strict big-endian reader for TPM wire structures.

Every read checks the remaining length first and raises
:class:`~soapattest.errors.TruncatedError` with the structure name and the
byte offset; no read can raise ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct

from soapattest.errors import InvalidValueError, TrailingBytesError, TruncatedError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Reader:
    """Cursor over an immutable byte buffer."""

    __slots__ = ("_data", "_end", "pos", "structure")

    def __init__(self, data: bytes, structure: str, *, start: int = 0, end: int | None = None):
        self._data = data
        self.pos = start
        self._end = len(data) if end is None else end
        self.structure = structure

    @property
    def remaining(self) -> int:
        """Bytes left before the end of the buffer."""
        return self._end - self.pos

    def _need(self, n: int, what: str) -> int:
        pos = self.pos
        if n < 0 or pos + n > self._end:
            raise TruncatedError(
                f"{what} needs {n} bytes, {self._end - pos} remain",
                structure=self.structure,
                offset=pos,
            )
        self.pos = pos + n
        return pos

    def u8(self, what: str = "UINT8") -> int:
        pos = self._need(1, what)
        return self._data[pos]

    def u16(self, what: str = "UINT16") -> int:
        pos = self._need(2, what)
        return int(_U16.unpack_from(self._data, pos)[0])

    def u32(self, what: str = "UINT32") -> int:
        pos = self._need(4, what)
        return int(_U32.unpack_from(self._data, pos)[0])

    def u64(self, what: str = "UINT64") -> int:
        pos = self._need(8, what)
        return int(_U64.unpack_from(self._data, pos)[0])

    def raw(self, n: int, what: str = "bytes") -> bytes:
        pos = self._need(n, what)
        return self._data[pos : pos + n]

    def tpm2b(self, what: str = "TPM2B", *, max_size: int | None = None) -> bytes:
        """A TPM2B: UINT16 size then that many bytes; ``max_size`` bounds the size."""
        at = self.pos
        size = self.u16(f"{what}.size")
        if max_size is not None and size > max_size:
            raise InvalidValueError(
                f"{what}.size {size} exceeds the maximum {max_size}",
                structure=self.structure,
                offset=at,
            )
        return self.raw(size, f"{what}.buffer")

    def done(self) -> None:
        """Raise :class:`TrailingBytesError` unless the whole buffer was consumed."""
        if self.pos != self._end:
            raise TrailingBytesError(
                f"{self._end - self.pos} trailing bytes after the structure",
                structure=self.structure,
                offset=self.pos,
            )
