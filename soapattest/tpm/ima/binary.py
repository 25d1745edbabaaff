"""Parser of the binary IMA list (securityfs ``binary_runtime_measurements[_<alg>]``).

Record layout (``ima_measurements_show``; integers in host byte order, which
soapattest takes as little-endian - x86, arm64 and ``ima_canonical_fmt`` lists)::

    u32 pcr
    template digest        (20 bytes in binary_runtime_measurements, the bank's
                            digest size in the per-bank binary_runtime_measurements_<alg>)
    u32 template name length, template name (no NUL)
    template 'ima':   d (20 bytes, no length) || u32 name length || name (no NUL)
    any other:        u32 template data length || template data
                      (template data = u32 len || field data, per field)

Big-endian hosts' non-canonical lists are not supported (their PCR number reads as
>= 2**24 and is refused).
"""

from __future__ import annotations

import struct

from soapattest.errors import ImaLogError, ImaLogLimitError, ImaTruncatedError
from soapattest.tpm.constants import PCR_COUNT
from soapattest.tpm.ima.model import (
    DEFAULT_LIMITS,
    IMA_EVENT_NAME_LEN_MAX,
    KIND_BINARY,
    ImaEntry,
    ImaLimits,
    ImaLog,
)
from soapattest.tpm.ima.templates import (
    Decoded,
    FieldError,
    FieldLimitError,
    decode_fields,
    ima_template_data,
    split_fields,
    template_digest_size,
    template_fields,
    valid_template_name,
)

_U32 = struct.Struct("<I")
_IMA_D_SIZE = 20


class _Truncated(Exception):
    def __init__(self, what: str, pos: int) -> None:
        super().__init__(what)
        self.what = what
        self.pos = pos


def parse_ima_binary(
    data: bytes,
    *,
    template_hash_alg: str = "sha1",
    limits: ImaLimits = DEFAULT_LIMITS,
    allow_trailing_partial: bool = False,
    first_index: int = 0,
) -> ImaLog:
    """Parse an untrusted binary IMA measurement list.

    ``template_hash_alg`` fixes the recorded template digest size: ``sha1`` for
    ``binary_runtime_measurements``, the bank for ``binary_runtime_measurements_<alg>``.
    ``first_index`` numbers the first entry (a list read from an offset). With
    ``allow_trailing_partial`` an entry cut short by the end of ``data`` is ignored
    and counted in ``ImaLog.trailing_partial`` (a length field pointing past the end
    then also counts as a cut - use only for lists read while they grow).

    Raises :class:`ImaTruncatedError` (entry index, byte offset) when the data ends
    inside an entry, :class:`ImaLogLimitError` when a bound is exceeded,
    :class:`ImaLogError` for anything else malformed (PCR >= 24, bad template
    name, template fields that do not add up),
    :class:`ImaUnsupportedAlgorithmError` for an unknown ``template_hash_alg``.
    Time and memory are linear in ``len(data)``.
    """
    digest_size = template_digest_size(template_hash_alg)
    if len(data) > limits.max_bytes:
        raise ImaLogLimitError(f"list is {len(data)} bytes, over the limit {limits.max_bytes}")
    entries: list[ImaEntry] = []
    pos, end, trailing = 0, len(data), 0
    while pos < end:
        index = first_index + len(entries)
        if len(entries) >= limits.max_entries:
            raise ImaLogLimitError(
                f"more than {limits.max_entries} entries", entry_index=index, offset=pos
            )
        try:
            entry, pos = _parse_entry(data, pos, index, template_hash_alg, digest_size, limits)
        except _Truncated as exc:
            if allow_trailing_partial:
                trailing = end - pos
                break
            raise ImaTruncatedError(
                f"list ends inside {exc.what}", entry_index=index, offset=exc.pos
            ) from None
        except FieldLimitError as exc:
            raise ImaLogLimitError(str(exc), entry_index=index, offset=pos) from None
        except FieldError as exc:
            raise ImaLogError(str(exc), entry_index=index, offset=pos) from None
        entries.append(entry)
    return ImaLog(KIND_BINARY, template_hash_alg, tuple(entries), trailing)


def _take(data: bytes, pos: int, n: int, what: str) -> int:
    """Return the end of ``n`` bytes at ``pos``; raise _Truncated if they are not there."""
    if n > len(data) - pos:
        raise _Truncated(what, pos)
    return pos + n


def _u32(data: bytes, pos: int, what: str) -> int:
    _take(data, pos, 4, what)
    return int(_U32.unpack_from(data, pos)[0])


def _parse_entry(
    data: bytes, pos: int, index: int, alg: str, digest_size: int, limits: ImaLimits
) -> tuple[ImaEntry, int]:
    if len(data) - pos < digest_size + 8:  # slow path: name the part that is cut
        _u32(data, pos, "the PCR index")
        _take(data, pos + 4, digest_size, "the template digest")
        _u32(data, pos + 4 + digest_size, "the template name length")
    pcr = _U32.unpack_from(data, pos)[0]
    if pcr >= PCR_COUNT:
        raise FieldError(f"PCR {pcr} out of range 0..{PCR_COUNT - 1}")
    pos += 4
    template_digest = data[pos : pos + digest_size]
    pos += digest_size
    name_len = _U32.unpack_from(data, pos)[0]
    if name_len > limits.max_template_name_len:
        raise FieldLimitError(f"template name length {name_len} over the limit")
    pos += 4
    end = _take(data, pos, name_len, "the template name")
    raw_name = data[pos:end]
    pos = end
    if not valid_template_name(raw_name):
        raise FieldError("malformed template name")
    name = raw_name.decode("ascii")
    if name == "ima":
        end = _take(data, pos, _IMA_D_SIZE, "the 'ima' digest")
        digest = data[pos:end]
        pos = end
        n_len = _u32(data, pos, "the 'ima' name length")
        if n_len > IMA_EVENT_NAME_LEN_MAX:
            raise FieldError(f"'ima' template name length {n_len} over {IMA_EVENT_NAME_LEN_MAX}")
        pos += 4
        end = _take(data, pos, n_len, "the 'ima' name")
        event_name = data[pos:end]
        pos = end
        decoded = decode_fields(("d", "n"), [digest, event_name + b"\0"], limits)
        template_data = ima_template_data(digest, event_name)
    else:
        td_len = _u32(data, pos, "the template data length")
        if td_len > limits.max_template_data_len:
            raise FieldLimitError(f"template data length {td_len} over the limit")
        pos += 4
        end = _take(data, pos, td_len, "the template data")
        template_data = data[pos:end]
        pos = end
        decoded = Decoded()
        ids = template_fields(name)
        if ids is not None:
            decoded = decode_fields(ids, split_fields(template_data, len(ids)), limits)
    entry = ImaEntry(
        index=index,
        pcr=pcr,
        template_digest=template_digest,
        template_name=name,
        template_data=template_data,
        file_hash_alg=decoded.file_hash_alg,
        file_hash=decoded.file_hash,
        path=decoded.path,
        signature=decoded.signature,
        buf=decoded.buf,
        template_hash_alg=alg,
        digest_type=decoded.digest_type,
    )
    return entry, pos
