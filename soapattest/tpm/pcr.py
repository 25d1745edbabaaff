"""PCR selections (TPML_PCR_SELECTION), PCR digests and PCR extension.

TPM 2.0 Library Part 2, 10.6.2 (TPMS_PCR_SELECTION) and 10.9.7
(TPML_PCR_SELECTION); Part 1, 17.6 (PCR extend) and Part 3, 18.4 (TPM2_Quote:
the pcrDigest is the hash of the selected PCR values concatenated in
selection order).

Banks are named by soapattest's bank names (``"sha1"``, ``"sha256"``, ...,
see :mod:`soapattest.tpm.constants`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from soapattest.errors import (
    InvalidPcrSelectionError,
    MissingPcrValueError,
    PcrValueLengthError,
    UnknownAlgorithmError,
    UnknownBankError,
)
from soapattest.tpm.constants import (
    HASH_ALGORITHMS,
    HASH_BY_NAME,
    HASH_COUNT_MAX,
    PCR_COUNT,
    PCR_SELECT_MAX,
    HashAlgorithm,
)
from soapattest.tpm.reader import Reader

PcrValues = dict[str, dict[int, bytes]]
"""Reported PCR values: bank name -> PCR index -> value (untrusted until a quote covers them)."""

_STRUCT = "TPML_PCR_SELECTION"
_BANK_HEAD = struct.Struct(">HB")
# Parsed selections by the exact bytes of their banks (see parse_pcr_selection).
_CACHE: dict[bytes, PcrSelection] = {}
_CACHE_MAX = 256
# _BITS[octet][value]: the PCR indices that octet ``octet`` of pcrSelect selects.
_BITS: tuple[tuple[tuple[int, ...], ...], ...] = tuple(
    tuple(tuple(8 * octet + i for i in range(8) if value >> i & 1) for value in range(256))
    for octet in range(PCR_SELECT_MAX)
)


def _bank(name: str, structure: str = "") -> HashAlgorithm:
    alg = HASH_BY_NAME.get(name) if isinstance(name, str) else None
    if alg is None:
        raise UnknownBankError(f"unknown PCR bank {name!r}", bank=str(name), structure=structure)
    return alg


@dataclass(frozen=True, slots=True)
class PcrSelection:
    """A PCR selection: banks in wire order, each with its PCR indices ascending.

    Build one from a mapping with :meth:`from_mapping` (validated) or parse one
    with :func:`parse_pcr_selection`. A bank may carry no PCR when parsed from
    a TPM (a TPM clears the bits of banks it did not allocate), never when
    built from a mapping.
    """

    banks: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def from_mapping(cls, m: Mapping[str, Iterable[int]]) -> PcrSelection:
        """Validate and build a selection from ``{"sha256": [0, 7], ...}``.

        Banks keep the mapping's iteration order (the order the TPM hashes
        them); indices are sorted.

        Raises :class:`UnknownBankError` for a bank name that is not a known
        hash, and :class:`InvalidPcrSelectionError` for an empty mapping, a
        bank without PCRs, more than ``HASH_COUNT_MAX`` banks, a PCR index that
        is not an ``int`` in ``0..23`` or is listed twice.
        """
        if not m:
            raise InvalidPcrSelectionError("empty PCR selection", structure="PcrSelection")
        if len(m) > HASH_COUNT_MAX:
            raise InvalidPcrSelectionError(
                f"{len(m)} banks, at most {HASH_COUNT_MAX} allowed", structure="PcrSelection"
            )
        banks: list[tuple[str, tuple[int, ...]]] = []
        for name, indices in m.items():
            _bank(name, "PcrSelection")
            seen: set[int] = set()
            for i in indices:
                if type(i) is not int or not 0 <= i < PCR_COUNT:
                    raise InvalidPcrSelectionError(
                        f"bank {name}: PCR index {i!r} is not an integer in 0..{PCR_COUNT - 1}",
                        structure="PcrSelection",
                    )
                if i in seen:
                    raise InvalidPcrSelectionError(
                        f"bank {name}: PCR {i} listed twice", structure="PcrSelection"
                    )
                seen.add(i)
            if not seen:
                raise InvalidPcrSelectionError(
                    f"bank {name} selects no PCR", structure="PcrSelection"
                )
            banks.append((name, tuple(sorted(seen))))
        return cls(tuple(banks))

    def to_bytes(self) -> bytes:
        """Marshal as TPML_PCR_SELECTION with ``sizeofSelect`` = 3 (24 PCRs)."""
        out = [struct.pack(">I", len(self.banks))]
        for name, indices in self.banks:
            bits = 0
            for i in indices:
                bits |= 1 << i
            out.append(_BANK_HEAD.pack(_bank(name).alg, PCR_SELECT_MAX))
            out.append(bits.to_bytes(PCR_SELECT_MAX, "little"))
        return b"".join(out)

    def pcrs(self) -> Iterator[tuple[str, int]]:
        """Every selected ``(bank, index)`` in the order the TPM hashes them."""
        for name, indices in self.banks:
            for i in indices:
                yield name, i

    def is_empty(self) -> bool:
        """True when no PCR at all is selected (no bank, or only banks without PCRs)."""
        return not any(indices for _, indices in self.banks)

    def as_dict(self) -> dict[str, list[int]]:
        """``{bank: [indices]}``, banks in wire order (banks without PCRs included)."""
        return {name: list(indices) for name, indices in self.banks}


def parse_pcr_selection(r: Reader) -> PcrSelection:
    """Parse a TPML_PCR_SELECTION at the reader's position (Part 2, 10.9.7).

    Accepted: ``count`` <= ``HASH_COUNT_MAX``; each TPMS_PCR_SELECTION with a
    known hash algorithm, no bank twice, ``sizeofSelect`` in 1..3. Part 2
    bounds ``sizeofSelect`` below by PCR_SELECT_MIN (platform dependent, at
    least 1 on every platform since a TPM has PCRs; 3 on PC Client TPMs);
    a shorter bitmap than 3 octets leaves the higher PCRs unselected. More
    than 3 octets would select PCRs beyond 23 and is refused, even when the
    extra octets are zero.

    Selections of three-octet banks are memoised by their exact bytes (at
    most 256 entries, a pure function of the bytes: a cache hit returns what
    parsing would; PcrSelection is immutable).

    Raises :class:`TruncatedError`, :class:`UnknownAlgorithmError`,
    :class:`InvalidPcrSelectionError`.
    """
    at = r.pos
    count = r.u32("TPML_PCR_SELECTION.count")
    if count > HASH_COUNT_MAX:
        raise InvalidPcrSelectionError(
            f"count {count} exceeds {HASH_COUNT_MAX}", structure=r.structure, offset=at
        )
    # Hot path: the quotes of a fleet repeat a handful of selections.
    block_size = 6 * count
    block = r.peek(block_size)
    if block is not None:
        hit = _CACHE.get(block)
        if hit is not None:
            r.pos += block_size
            return hit
    start = r.pos
    banks: list[tuple[str, tuple[int, ...]]] = []
    seen: set[int] = set()
    for _ in range(count):
        at = r.pos
        alg_id, size = r.unpack(_BANK_HEAD, "TPMS_PCR_SELECTION")
        alg = HASH_ALGORITHMS.get(alg_id)
        if alg is None:
            raise UnknownAlgorithmError(
                f"PCR bank hash 0x{alg_id:04x} unknown",
                alg=alg_id,
                structure=r.structure,
                offset=at,
            )
        if alg_id in seen:
            raise InvalidPcrSelectionError(
                f"bank {alg.name} selected twice", structure=r.structure, offset=at
            )
        seen.add(alg_id)
        if not 1 <= size <= PCR_SELECT_MAX:
            raise InvalidPcrSelectionError(
                f"sizeofSelect {size} outside 1..{PCR_SELECT_MAX}",
                structure=r.structure,
                offset=at + 2,
            )
        indices: tuple[int, ...] = ()
        for octet, value in enumerate(r.raw(size, "TPMS_PCR_SELECTION.pcrSelect")):
            indices += _BITS[octet][value]
        banks.append((alg.name, indices))
    sel = PcrSelection(tuple(banks))
    if block is not None and r.pos - start == block_size:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[block] = sel
    return sel


def pcr_selection_from_bytes(data: bytes) -> PcrSelection:
    """Parse a whole buffer as one TPML_PCR_SELECTION (no trailing bytes)."""
    r = Reader(data, _STRUCT)
    sel = parse_pcr_selection(r)
    r.done()
    return sel


def pcr_digest(hash_name: str, selection: PcrSelection, values: PcrValues) -> bytes:
    """The quote's pcrDigest for ``values``: ``H(value_1 || ... || value_n)``.

    ``hash_name`` is the quote signing scheme's hash (Part 3, 18.4.1: the
    digest is computed with the hash of the signing scheme); the values are
    concatenated in :meth:`PcrSelection.pcrs` order. Extra values that are
    not selected are ignored here: the verifier checks both directions.

    Raises :class:`UnknownBankError` for an unknown ``hash_name`` or bank,
    :class:`MissingPcrValueError` when a selected PCR has no value,
    :class:`PcrValueLengthError` when a value is not its bank's digest size.
    """
    h = _bank(hash_name).new()
    sizes: dict[str, int] = {}
    for bank, index in selection.pcrs():
        size = sizes.get(bank)
        if size is None:
            size = sizes[bank] = _bank(bank).digest_size
        bank_values = values.get(bank)
        value = bank_values.get(index) if bank_values is not None else None
        if value is None:
            raise MissingPcrValueError(f"no value for PCR {bank}:{index}", bank=bank, index=index)
        if len(value) != size:
            raise PcrValueLengthError(
                f"PCR {bank}:{index} value has {len(value)} bytes, expected {size}",
                bank=bank,
                index=index,
            )
        h.update(value)
    return bytes(h.digest())


def extend(bank: str, old: bytes, digest: bytes) -> bytes:
    """``H_bank(old || digest)``: the PCR value after TPM2_PCR_Extend (Part 1, 17.6.4).

    Raises :class:`UnknownBankError` or :class:`PcrValueLengthError` when
    ``old`` or ``digest`` is not the bank's digest size.
    """
    alg = _bank(bank)
    for what, value in (("old value", old), ("digest", digest)):
        if len(value) != alg.digest_size:
            raise PcrValueLengthError(
                f"extend {bank}: {what} has {len(value)} bytes, expected {alg.digest_size}",
                bank=bank,
            )
    return alg.digest(old + digest)
