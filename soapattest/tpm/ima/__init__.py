"""Linux IMA runtime measurement lists: parsing, PCR replay, boot_aggregate.

Pure code: bytes in, frozen values out. Every parser refuses malformed input with
:class:`~soapattest.errors.ImaLogError` (or a subclass) naming the entry and the
line / byte offset; nothing else escapes. The entries are *untrusted* until
:func:`replay_ima` reproduces a PCR value taken from a verified quote.
"""

from __future__ import annotations

from soapattest.errors import ImaLogError, ImaLogLimitError, ImaUnknownFormatError
from soapattest.tpm.constants import PCR_COUNT
from soapattest.tpm.ima.ascii import parse_ima_ascii
from soapattest.tpm.ima.binary import parse_ima_binary
from soapattest.tpm.ima.model import (
    BOOT_AGGREGATE_NAME,
    DEFAULT_LIMITS,
    IMA_PCR,
    KIND_ASCII,
    KIND_BINARY,
    ImaEntry,
    ImaLimits,
    ImaLog,
)
from soapattest.tpm.ima.replay import (
    boot_aggregate,
    boot_aggregate_bank,
    check_boot_aggregate,
    find_template_digest_mismatches,
    replay_ima,
    replay_ima_pcrs,
)
from soapattest.tpm.ima.templates import BUILTIN_TEMPLATES, template_fields

__all__ = [
    "BINARY_DIGEST_CANDIDATES",
    "BOOT_AGGREGATE_NAME",
    "BUILTIN_TEMPLATES",
    "DEFAULT_LIMITS",
    "IMA_PCR",
    "KIND_ASCII",
    "KIND_BINARY",
    "ImaEntry",
    "ImaLimits",
    "ImaLog",
    "boot_aggregate",
    "boot_aggregate_bank",
    "check_boot_aggregate",
    "detect_ima_kind",
    "find_template_digest_mismatches",
    "parse_ima",
    "parse_ima_ascii",
    "parse_ima_binary",
    "replay_ima",
    "replay_ima_pcrs",
    "template_fields",
]

# Template digest algorithms tried, in this order, on a binary list of unknown bank.
BINARY_DIGEST_CANDIDATES = ("sha1", "sha256", "sha384", "sha512")
_ASCII_FIRST = frozenset(b" 0123456789")


def detect_ima_kind(data: bytes) -> str:
    """``"binary"`` or ``"ascii"`` from the first byte of a list.

    Rule: a binary list starts with its little-endian u32 PCR index (< 24), so its
    first byte is < 24; an ascii list starts with ``"%2d "``, a space or a digit
    (0x20, 0x30-0x39). Anything else, or empty data, raises
    :class:`ImaUnknownFormatError`.
    """
    if not data:
        raise ImaUnknownFormatError("empty IMA list: cannot tell ascii from binary")
    first = data[0]
    if first < PCR_COUNT:
        return KIND_BINARY
    if first in _ASCII_FIRST:
        return KIND_ASCII
    raise ImaUnknownFormatError(
        f"first byte 0x{first:02x} starts neither an ascii nor a binary IMA list", offset=0
    )


def parse_ima(
    data: bytes,
    *,
    template_hash_alg: str | None = None,
    limits: ImaLimits = DEFAULT_LIMITS,
    allow_trailing_partial: bool = False,
    first_index: int = 0,
) -> ImaLog:
    """Parse an untrusted IMA list of either kind, detecting it (see :func:`detect_ima_kind`).

    ``template_hash_alg`` fixes the recorded template digest algorithm. When it is
    ``None``: an ascii list's digest length decides (:func:`parse_ima_ascii`); a
    binary list is parsed with each of :data:`BINARY_DIGEST_CANDIDATES` and exactly
    one must parse the whole list into at least one entry - none raises the error of
    the candidate that got furthest, several raise :class:`ImaUnknownFormatError`
    (pass ``template_hash_alg``). A 32-byte binary digest is taken as sha256 (pass
    ``"sm3_256"`` for an SM3 list). Other arguments: see the two parsers.

    Raises :class:`ImaLogError` or a subclass; empty input raises
    :class:`ImaUnknownFormatError` (call a kind-specific parser for a possibly empty
    list read from an offset). At most 4 parses: time and memory stay linear.
    """
    if len(data) > limits.max_bytes:
        raise ImaLogLimitError(f"list is {len(data)} bytes, over the limit {limits.max_bytes}")
    kind = detect_ima_kind(data)
    if kind == KIND_ASCII:
        return parse_ima_ascii(
            data,
            template_hash_alg=template_hash_alg,
            limits=limits,
            allow_trailing_partial=allow_trailing_partial,
            first_index=first_index,
        )
    candidates = BINARY_DIGEST_CANDIDATES if template_hash_alg is None else (template_hash_alg,)
    if len(candidates) == 1:
        return parse_ima_binary(
            data,
            template_hash_alg=candidates[0],
            limits=limits,
            allow_trailing_partial=allow_trailing_partial,
            first_index=first_index,
        )
    parsed: list[ImaLog] = []
    failures: list[ImaLogError] = []
    for alg in candidates:
        try:
            log = parse_ima_binary(
                data,
                template_hash_alg=alg,
                limits=limits,
                allow_trailing_partial=allow_trailing_partial,
                first_index=first_index,
            )
        except ImaLogError as exc:
            failures.append(exc)
            continue
        if log.entries:
            parsed.append(log)
    if len(parsed) == 1:
        return parsed[0]
    if parsed:
        algs = ", ".join(log.template_hash_alg for log in parsed)
        raise ImaUnknownFormatError(
            f"binary list parses with template digests of {algs}: pass the algorithm"
        )
    if failures:
        raise max(failures, key=lambda e: e.offset or 0)
    raise ImaUnknownFormatError("binary list holds no complete entry")
