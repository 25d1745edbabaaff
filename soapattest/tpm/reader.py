"""A bounded, strict big-endian reader for TPM wire structures.

Every read checks the remaining length first and raises
:class:`~soapattest.errors.TruncatedError` with the structure name and the
byte offset; no read can raise ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct
from typing import Any

from soapattest.errors import InvalidValueError, TrailingBytesError, TruncatedError

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Reader:
    """Cursor over an immutable byte buffer.

    Reads are on the server's hot path: each one is a bounds check and a
    slice or unpack; the ``what`` labels only go into error messages.
    """

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

    def _short(self, n: int, what: str) -> TruncatedError:
        return TruncatedError(
            f"{what} needs {n} bytes, {self._end - self.pos} remain",
            structure=self.structure,
            offset=self.pos,
        )

    def _need(self, n: int, what: str) -> int:
        pos = self.pos
        if n < 0 or pos + n > self._end:
            raise self._short(n, what)
        self.pos = pos + n
        return pos

    def u8(self, what: str = "UINT8") -> int:
        """One octet."""
        pos = self.pos
        if pos >= self._end:
            raise self._short(1, what)
        self.pos = pos + 1
        return self._data[pos]

    def u16(self, what: str = "UINT16") -> int:
        """A big-endian UINT16."""
        pos = self.pos
        if pos + 2 > self._end:
            raise self._short(2, what)
        self.pos = pos + 2
        data = self._data
        return data[pos] << 8 | data[pos + 1]

    def u32(self, what: str = "UINT32") -> int:
        """A big-endian UINT32."""
        pos = self._need(4, what)
        return int(_U32.unpack_from(self._data, pos)[0])

    def u64(self, what: str = "UINT64") -> int:
        """A big-endian UINT64."""
        pos = self._need(8, what)
        return int(_U64.unpack_from(self._data, pos)[0])

    def raw(self, n: int, what: str = "bytes") -> bytes:
        """``n`` octets."""
        pos = self._need(n, what)
        return self._data[pos : pos + n]

    def peek(self, n: int) -> bytes | None:
        """The next ``n`` octets without consuming them, or ``None`` when fewer remain."""
        pos = self.pos
        if pos + n > self._end:
            return None
        return self._data[pos : pos + n]

    def unpack(self, fmt: struct.Struct, what: str) -> tuple[Any, ...]:
        """Several fixed-size fields at once with a precompiled ``struct.Struct``."""
        pos = self._need(fmt.size, what)
        return fmt.unpack_from(self._data, pos)

    def tpm2b(self, what: str = "TPM2B", *, max_size: int | None = None) -> bytes:
        """A TPM2B: UINT16 size then that many bytes; ``max_size`` bounds the size."""
        at = self.pos
        start = at + 2
        if start > self._end:
            raise self._short(2, what + ".size")
        data = self._data
        size = data[at] << 8 | data[at + 1]
        if max_size is not None and size > max_size:
            raise InvalidValueError(
                f"{what}.size {size} exceeds the maximum {max_size}",
                structure=self.structure,
                offset=at,
            )
        stop = start + size
        if stop > self._end:
            self.pos = start
            raise self._short(size, what + ".buffer")
        self.pos = stop
        return data[start:stop]

    def done(self) -> None:
        """Raise :class:`TrailingBytesError` unless the whole buffer was consumed."""
        if self.pos != self._end:
            raise TrailingBytesError(
                f"{self._end - self.pos} trailing bytes after the structure",
                structure=self.structure,
                offset=self.pos,
            )
