"""Parser of the ascii IMA list (securityfs ``ascii_runtime_measurements[_<alg>]``).

Line format (``ima_ascii_measurements_show``)::

    "%2d " PCR, template digest in hex, " " template name, then " " + field per field

Every field is preceded by one space and an empty field (an ``ima-sig`` entry
without signature) prints nothing, so ``line.split(b" ")`` yields exactly one token
per field. Names never contain spaces (the kernel writes them as ``_``), so the
split is exact and the template data is rebuilt byte for byte.

Limitation: the kernel does not escape newlines in file names; a name with a
newline splits its entry over two lines. Such a list fails to parse, or (when the
second half looks like an entry) its first half fails the template-digest check
and the extra line breaks the PCR replay: it never replays to the real PCR value.
Prefer the binary list, which has no such ambiguity.
"""

from __future__ import annotations

from soapattest.errors import ImaLogError, ImaLogLimitError, ImaTruncatedError
from soapattest.tpm.constants import PCR_COUNT
from soapattest.tpm.ima.model import (
    DEFAULT_LIMITS,
    IMA_EVENT_NAME_LEN_MAX,
    KIND_ASCII,
    ImaEntry,
    ImaLimits,
    ImaLog,
)
from soapattest.tpm.ima.templates import (
    Decoded,
    FieldError,
    FieldLimitError,
    decode_fields,
    field_from_ascii,
    ima_template_data,
    join_fields,
    template_digest_size,
    template_fields,
    unhex,
    valid_template_name,
)

_HEX_LEN_ALG = {40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}


def parse_ima_ascii(
    data: bytes,
    *,
    template_hash_alg: str | None = None,
    limits: ImaLimits = DEFAULT_LIMITS,
    allow_trailing_partial: bool = False,
    first_index: int = 0,
) -> ImaLog:
    """Parse an untrusted ascii IMA measurement list.

    ``template_hash_alg`` is the bank of the recorded template digests; ``None``
    infers it from the first line's digest length (40 hex: sha1, 64: sha256, 96:
    sha384, 128: sha512 - an sm3_256 list must say so). Every line must have that
    length. ``first_index`` numbers the first entry (a list read from an offset).
    Each line must end with a newline; with ``allow_trailing_partial`` an unended
    last line is ignored and counted in ``ImaLog.trailing_partial``.

    Raises :class:`ImaLogError` (entry index, 1-based line, byte offset) for any
    malformed line, :class:`ImaLogLimitError` when a bound is exceeded,
    :class:`ImaTruncatedError` for an unended last line,
    :class:`ImaUnsupportedAlgorithmError` for an unknown ``template_hash_alg``.
    Time and memory are linear in ``len(data)``.
    """
    if len(data) > limits.max_bytes:
        raise ImaLogLimitError(f"list is {len(data)} bytes, over the limit {limits.max_bytes}")
    alg = template_hash_alg
    digest_size = template_digest_size(alg) if alg is not None else 0
    entries: list[ImaEntry] = []
    max_line = limits.max_line_len
    pos, end, trailing = 0, len(data), 0
    while pos < end:
        index = first_index + len(entries)
        line_no = len(entries) + 1
        nl = data.find(b"\n", pos, pos + max_line + 1)
        if nl < 0:
            if end - pos > max_line:
                raise ImaLogLimitError(
                    f"line longer than {max_line} bytes",
                    entry_index=index,
                    line=line_no,
                    offset=pos,
                )
            if allow_trailing_partial:
                trailing = end - pos
                break
            raise ImaTruncatedError(
                "last line has no newline", entry_index=index, line=line_no, offset=pos
            )
        if len(entries) >= limits.max_entries:
            raise ImaLogLimitError(
                f"more than {limits.max_entries} entries", entry_index=index, offset=pos
            )
        try:
            if alg is None:
                alg = _infer_alg(data[pos:nl])
                digest_size = template_digest_size(alg)
            entries.append(_parse_line(data[pos:nl], index, alg, digest_size, limits))
        except FieldLimitError as exc:
            raise ImaLogLimitError(str(exc), entry_index=index, line=line_no, offset=pos) from None
        except FieldError as exc:
            raise ImaLogError(str(exc), entry_index=index, line=line_no, offset=pos) from None
        pos = nl + 1
    return ImaLog(KIND_ASCII, alg or "sha1", tuple(entries), trailing)


def _infer_alg(line: bytes) -> str:
    parts = line.lstrip(b" ").split(b" ", 2)
    alg = _HEX_LEN_ALG.get(len(parts[1])) if len(parts) > 1 else None
    if alg is None:
        raise FieldError("cannot tell the template digest algorithm from the first line")
    return alg


def _parse_line(
    line: bytes, index: int, template_hash_alg: str, digest_size: int, limits: ImaLimits
) -> ImaEntry:
    if not line:
        raise FieldError("empty line")
    if b"\0" in line:
        raise FieldError("NUL byte in an ascii line")
    tokens = line.split(b" ")
    if tokens[0] == b"":  # "%2d": a one-digit PCR is padded with a space
        tokens = tokens[1:]
        if not tokens or len(tokens[0]) != 1:
            raise FieldError("malformed PCR field")
    if len(tokens) < 3:
        raise FieldError("fewer than 3 fields (PCR, template digest, template name)")
    raw_pcr, raw_digest, raw_name, *raw_fields = tokens
    if not 1 <= len(raw_pcr) <= 2 or not raw_pcr.isdigit():
        raise FieldError("malformed PCR field")
    pcr = int(raw_pcr)
    if pcr >= PCR_COUNT:
        raise FieldError(f"PCR {pcr} out of range 0..{PCR_COUNT - 1}")
    if len(raw_digest) != 2 * digest_size:
        raise FieldError(
            f"template digest is {len(raw_digest)} hex digits, "
            f"{template_hash_alg} needs {2 * digest_size}"
        )
    template_digest = unhex(raw_digest, "template digest")
    if len(raw_name) > limits.max_template_name_len:
        raise FieldLimitError(f"template name longer than {limits.max_template_name_len}")
    if not valid_template_name(raw_name):
        raise FieldError("malformed template name")
    name = raw_name.decode("ascii")
    ids = template_fields(name)
    decoded, template_data, known = Decoded(), b"", False
    if ids is not None:
        if len(raw_fields) != len(ids):
            raise FieldError(f"template {name} has {len(ids)} fields, the line {len(raw_fields)}")
        values = [field_from_ascii(f, t) for f, t in zip(ids, raw_fields, strict=True)]
        known_values = [v for v in values if v is not None]
        decoded = decode_fields(
            tuple(f for f, v in zip(ids, values, strict=True) if v is not None),
            known_values,
            limits,
        )
        if len(known_values) == len(values):
            known = True
            if name == "ima":
                name_bytes = known_values[1][:-1]
                if len(name_bytes) > IMA_EVENT_NAME_LEN_MAX:
                    raise FieldError(f"'ima' template name over {IMA_EVENT_NAME_LEN_MAX} bytes")
                template_data = ima_template_data(known_values[0], name_bytes)
            else:
                template_data = join_fields(known_values)
            if len(template_data) > limits.max_template_data_len:
                raise FieldLimitError(f"template data over {limits.max_template_data_len} bytes")
    return ImaEntry(
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
        template_hash_alg=template_hash_alg,
        digest_type=decoded.digest_type,
        template_data_known=known,
    )
