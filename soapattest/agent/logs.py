"""Reading the measurement logs the agent serves (measured-boot log, IMA list).

The agent serves bytes as the kernel exposes them; it does not parse or judge
them (the server does). The only structure looked at is the size fields of
binary IMA entries, so that a chunk of the IMA list ends on an entry
boundary and each chunk parses on its own.

securityfs files report a size of 0, so files are read with an explicit bound
rather than trusted for their size.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

from soapattest.errors import EventLogUnavailableError, ImaLogUnavailableError, InvalidArgumentError

_U32 = struct.Struct("<I")  # binary IMA lists use the host's (little-endian) byte order
_IMA_NAME_MAX = 255
_IMA_ENTRY_MAX = 1024 * 1024  # read this far past a chunk to finish one oversized entry


def read_event_log(path: Path, limit: int) -> bytes:
    """The whole measured-boot event log at ``path`` (at most ``limit`` bytes).

    Raises :class:`EventLogUnavailableError` when the file is missing,
    unreadable, empty or larger than ``limit``.
    """
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise EventLogUnavailableError(
            f"cannot read the event log {path}: {exc.strerror or exc}", path=str(path)
        ) from exc
    if not data:
        raise EventLogUnavailableError(f"the event log {path} is empty", path=str(path))
    if len(data) > limit:
        raise EventLogUnavailableError(
            f"the event log {path} exceeds the configured limit of {limit} bytes", path=str(path)
        )
    return data


@dataclass(frozen=True, slots=True)
class ImaChunk:
    """Bytes ``[offset, next_offset)`` of the IMA list; ``more`` when bytes remain after."""

    data: bytes
    offset: int
    next_offset: int
    more: bool


def _entry_size(buf: bytes, pos: int, digest_size: int) -> int | None:
    """Size of the binary IMA entry at ``pos``, ``None`` when ``buf`` does not hold it whole.

    Entry layout (kernel ima_fs.c, ima_measurements_show): PCR (u32), template
    digest, template name length (u32) + name, template data length (u32) + data.
    """
    p = pos + 4 + digest_size
    if p + 4 > len(buf):
        return None
    (name_len,) = _U32.unpack_from(buf, p)
    if name_len > _IMA_NAME_MAX:
        return None
    p += 4 + name_len
    if p + 4 > len(buf):
        return None
    (data_len,) = _U32.unpack_from(buf, p)
    p += 4 + data_len
    return p - pos if p <= len(buf) else None


def _digest_size_of(path: Path) -> int:
    """Template digest size from the list's file name (``..._sha256`` -> 32; default SHA-1)."""
    suffix = path.name.rpartition("_")[2]
    return {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}.get(suffix, 20)


def read_ima_chunk(path: Path, offset: int, chunk_max: int) -> ImaChunk:
    """Read the binary IMA list at ``path`` from byte ``offset``, at most ``chunk_max`` bytes.

    The chunk ends on an entry boundary when the entries parse (it holds at
    least one whole entry even if that entry exceeds ``chunk_max``); bytes that
    do not look like entries are returned as they are, up to ``chunk_max``.
    ``offset`` equal to the list's size returns an empty chunk.

    Raises :class:`InvalidArgumentError` for a negative offset or one past the
    end of the list (the list was reset, e.g. by a reboot: start again at 0),
    :class:`ImaLogUnavailableError` when the list cannot be read.
    """
    if offset < 0:
        raise InvalidArgumentError(f"offset {offset} is negative", argument="offset")
    digest_size = _digest_size_of(path)
    try:
        with path.open("rb") as f:
            skipped = _seek(f, offset)
            if skipped < offset:
                raise InvalidArgumentError(
                    f"offset {offset} is past the end of the IMA list ({skipped} bytes)",
                    argument="offset",
                )
            buf = f.read(chunk_max + 1)
            if len(buf) > chunk_max and _entry_size(buf, 0, digest_size) is None:
                buf += f.read(_IMA_ENTRY_MAX)  # finish a first entry bigger than a chunk
    except OSError as exc:
        raise ImaLogUnavailableError(
            f"cannot read the IMA list {path}: {exc.strerror or exc}", path=str(path)
        ) from exc
    end = 0
    while end < len(buf):
        size = _entry_size(buf, end, digest_size)
        if size is None or (end and end + size > chunk_max):
            break
        end += size
    if end == 0:  # not entry-shaped (or empty): raw bytes, bounded
        end = min(len(buf), chunk_max)
    return ImaChunk(buf[:end], offset, offset + end, more=len(buf) > end)


def _seek(f: io.BufferedReader, offset: int) -> int:
    """Position ``f`` at ``offset``; returns how far it got (less when the list is shorter)."""
    try:
        if offset == 0 or (f.seek(offset - 1) == offset - 1 and f.read(1)):
            return offset
    except OSError:  # a stream without random access: read and drop
        f.seek(0)
    else:
        f.seek(0)
    done = 0
    while done < offset:
        got = f.read(min(1 << 20, offset - done))
        if not got:
            break
        done += len(got)
    return done
