"""IMA template descriptors and fields (Linux security/integrity/ima/ima_template*.c).

A template is a list of fields. The kernel hashes, for every template but ``ima``,
``u32 len || field data`` per field (host byte order; little-endian here) and writes
exactly that as the binary list's template data. Field data formats:

- ``d``       digest (DATA_FMT_DIGEST), sha1 (20 bytes) or md5 (16) only
- ``d-ng``    ``alg ":" NUL digest`` (DATA_FMT_DIGEST_WITH_ALGO)
- ``d-ngv2``  ``type ":" alg ":" NUL digest``, type ``ima`` or ``verity``
- ``d-modsig`` like ``d-ng``, or empty
- ``n``, ``n-ng``  name ``NUL``-terminated (DATA_FMT_STRING; spaces written as ``_``)
- ``sig``, ``buf``, ``modsig``, ``evmsig``, ``xattrlengths``, ``xattrvalues``  raw
  bytes, shown as hex in ascii (DATA_FMT_HEX)
- ``iuid``, ``igid``, ``imode``  unsigned ints (shown in decimal in ascii)
- ``xattrnames``  raw bytes shown with ``%s`` in ascii

Ascii rebuild limitation: ``iuid``/``igid``/``imode``/``xattrnames`` cannot be
turned back into their exact bytes, so ascii entries of templates with those fields
(``evm-sig``) keep no template data.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import lru_cache

from soapattest.errors import ImaUnsupportedAlgorithmError
from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.ima.model import IMA_EVENT_NAME_LEN_MAX, ImaLimits

BUILTIN_TEMPLATES: dict[str, str] = {
    "ima": "d|n",
    "ima-ng": "d-ng|n-ng",
    "ima-sig": "d-ng|n-ng|sig",
    "ima-ngv2": "d-ngv2|n-ng",
    "ima-sigv2": "d-ngv2|n-ng|sig",
    "ima-buf": "d-ng|n-ng|buf",
    "ima-modsig": "d-ng|n-ng|sig|d-modsig|modsig",
    "evm-sig": "d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode",
}

FMT_DIGEST = "digest"
FMT_DIGEST_ALGO = "digest_algo"
FMT_STRING = "string"
FMT_HEX = "hex"
FMT_OPAQUE = "opaque"  # cannot be rebuilt from its ascii form

FIELD_FORMATS: dict[str, str] = {
    "d": FMT_DIGEST,
    "n": FMT_STRING,
    "d-ng": FMT_DIGEST_ALGO,
    "d-ngv2": FMT_DIGEST_ALGO,
    "d-modsig": FMT_DIGEST_ALGO,
    "n-ng": FMT_STRING,
    "sig": FMT_HEX,
    "buf": FMT_HEX,
    "modsig": FMT_HEX,
    "evmsig": FMT_HEX,
    "xattrlengths": FMT_HEX,
    "xattrvalues": FMT_HEX,
    "xattrnames": FMT_OPAQUE,
    "iuid": FMT_OPAQUE,
    "igid": FMT_OPAQUE,
    "imode": FMT_OPAQUE,
}

IMA_TEMPLATE_NUM_FIELDS_MAX = 15
_D_SIZES = {20: "sha1", 16: "md5"}
_ALG_NAME = re.compile(rb"[a-z0-9][a-z0-9_-]{0,31}")
_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})*")
_TEMPLATE_NAME = re.compile(rb"[\x21-\x7e]+")


class FieldError(Exception):
    """Internal: a field does not decode; the parser adds entry index and offset."""


class FieldLimitError(FieldError):
    """Internal: a field exceeds an :class:`ImaLimits` bound."""


def template_digest_size(alg: str) -> int:
    """Digest size of a bank name; raises :class:`ImaUnsupportedAlgorithmError`."""
    h = hash_by_name(alg)
    if h is None:
        raise ImaUnsupportedAlgorithmError(f"unknown hash algorithm / bank {alg!r}", alg=alg)
    return h.digest_size


@lru_cache(maxsize=256)
def template_fields(name: str) -> tuple[str, ...] | None:
    """The field ids of a template name, or ``None`` when it is not decodable.

    Built-in names map to their format; a name that is itself a valid format
    string (``d-ng|n-ng|sig``) is a custom template (the kernel lists those by
    format, and ``lookup_template_desc`` accepts either).
    """
    fmt = BUILTIN_TEMPLATES.get(name, name)
    ids = tuple(fmt.split("|"))
    if not 1 <= len(ids) <= IMA_TEMPLATE_NUM_FIELDS_MAX:
        return None
    if all(i in FIELD_FORMATS for i in ids):
        return ids
    return None


@lru_cache(maxsize=256)
def valid_template_name(raw: bytes) -> bool:
    """Kernel template names are printable ascii without spaces."""
    return _TEMPLATE_NAME.fullmatch(raw) is not None


@dataclass(slots=True)
class Decoded:
    """Entry attributes decoded from template fields."""

    file_hash_alg: str | None = None
    file_hash: bytes | None = None
    path: str | None = None
    signature: bytes | None = None
    buf: bytes | None = None
    digest_type: str | None = None


@lru_cache(maxsize=256)
def _digest_prefix(prefix: bytes, field: str) -> tuple[str | None, str]:
    parts = prefix.split(b":")
    want = 2 if field == "d-ngv2" else 1
    if len(parts) != want or not all(_ALG_NAME.fullmatch(p) for p in parts):
        raise FieldError(f"field {field} has a malformed algorithm prefix")
    return (parts[0].decode("ascii") if want == 2 else None), parts[-1].decode("ascii")


def _decode_digest_algo(data: bytes, field: str) -> tuple[str | None, str, bytes]:
    nul = data.find(b"\0", 0, 80)
    if nul < 1 or data[nul - 1] != 0x3A:  # ':'
        raise FieldError(f"field {field} is not 'alg:' NUL digest")
    digest_type, alg = _digest_prefix(data[: nul - 1], field)
    return digest_type, alg, data[nul + 1 :]


def _decode_string(data: bytes, field: str, limits: ImaLimits) -> str:
    if not data.endswith(b"\0") or b"\0" in data[:-1]:
        raise FieldError(f"field {field} is not a NUL-terminated string")
    if len(data) - 1 > limits.max_path_len:
        raise FieldLimitError(f"field {field} is {len(data) - 1} bytes, over {limits.max_path_len}")
    return data[:-1].decode("utf-8", "surrogateescape")


def decode_fields(ids: tuple[str, ...], values: list[bytes], limits: ImaLimits) -> Decoded:
    """Decode the fields soapattest exposes (digest, name, sig, buf) from field data."""
    out = Decoded()
    for field, data in zip(ids, values, strict=True):
        if field == "d":
            alg = _D_SIZES.get(len(data))
            if alg is None:
                raise FieldError(f"field d is {len(data)} bytes, not a sha1 or md5 digest")
            out.file_hash_alg, out.file_hash = alg, data
        elif field in ("d-ng", "d-ngv2"):
            out.digest_type, out.file_hash_alg, out.file_hash = _decode_digest_algo(data, field)
        elif field == "d-modsig":
            if data:
                _decode_digest_algo(data, field)
        elif field in ("n", "n-ng"):
            out.path = _decode_string(data, field, limits)
        elif field == "sig":
            out.signature = data or None
        elif field == "buf":
            out.buf = data or None
    return out


_U32 = struct.Struct("<I")


def split_fields(data: bytes, count: int) -> list[bytes]:
    """Split binary template data into ``count`` ``u32 len || data`` fields, exactly."""
    values: list[bytes] = []
    pos, end = 0, len(data)
    unpack = _U32.unpack_from
    for i in range(count):
        if end - pos < 4:
            raise FieldError(f"template data ends before field {i}'s length")
        size = unpack(data, pos)[0]
        pos += 4
        if size > end - pos:
            raise FieldError(f"field {i} length {size} runs past the template data")
        values.append(data[pos : pos + size])
        pos += size
    if pos != end:
        raise FieldError(f"{end - pos} bytes after the last template field")
    return values


def join_fields(values: list[bytes]) -> bytes:
    """Binary template data (the hashed bytes) of non-``ima`` templates."""
    return b"".join(len(v).to_bytes(4, "little") + v for v in values)


def ima_template_data(digest: bytes, name: bytes) -> bytes:
    """The hashed bytes of an ``ima`` template entry: digest || name padded to 256."""
    return digest + name + bytes(IMA_EVENT_NAME_LEN_MAX + 1 - len(name))


def unhex(token: bytes, field: str) -> bytes:
    """Strict hex decoding (bytes.fromhex would accept whitespace)."""
    if _HEX.fullmatch(token) is None:
        raise FieldError(f"field {field} is not hex")
    return bytes.fromhex(token.decode("ascii"))


def field_from_ascii(field: str, token: bytes) -> bytes | None:
    """The field data of one ascii token (``ima_show_template_data_ascii`` inverted),
    or ``None`` when the field's ascii form does not determine its bytes."""
    fmt = FIELD_FORMATS[field]
    if fmt == FMT_STRING:
        return token + b"\0"
    if fmt in (FMT_HEX, FMT_DIGEST):
        return unhex(token, field)
    if fmt == FMT_DIGEST_ALGO:
        if not token:
            return b""  # an absent d-modsig
        colon = token.rfind(b":")
        if colon < 1:
            raise FieldError(f"field {field} has no 'alg:' prefix")
        return token[: colon + 1] + b"\0" + unhex(token[colon + 1 :], field)
    return None
