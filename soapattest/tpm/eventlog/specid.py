"""TCG_EfiSpecIDEvent, the "Spec ID Event03" header of crypto-agile logs (PFP 10.4.5.1).

Layout (little-endian)::

    BYTE   signature[16]            "Spec ID Event03\\0"
    UINT32 platformClass
    UINT8  specVersionMinor, specVersionMajor, specErrata, uintnSize
    UINT32 numberOfAlgorithms
    { UINT16 algorithmId; UINT16 digestSize; } digestSizes[numberOfAlgorithms]
    UINT8  vendorInfoSize
    BYTE   vendorInfo[vendorInfoSize]

The event data must end exactly after vendorInfo.
"""

from __future__ import annotations

import struct

from soapattest.errors import EventLogSpecIdError
from soapattest.tpm.constants import hash_by_alg
from soapattest.tpm.eventlog.model import SpecIdAlgorithm, SpecIdEvent

SPEC_ID_SIGNATURE = b"Spec ID Event03\x00"
MAX_SPEC_ID_ALGORITHMS = 8  # the TCG algorithm registry has 8 hashes a PCR bank may use
MAX_DIGEST_SIZE = 64  # TPMU_HA: the largest digest a TPM 2.0 produces (SHA-512, SHA3-512)

_FIXED = struct.Struct("<16sIBBBBI")
_ALG = struct.Struct("<HH")


def parse_spec_id(data: bytes, *, data_offset: int = 0) -> SpecIdEvent:
    """Parse the event data of the SpecID event.

    ``data_offset`` is the byte offset of ``data`` in the log (for error
    offsets). Raises :class:`~soapattest.errors.EventLogSpecIdError` (event 0)
    when the structure is short, overruns the event, lists no/duplicate
    algorithms, or gives a known algorithm a wrong digest size.
    """

    def fail(message: str, at: int) -> EventLogSpecIdError:
        return EventLogSpecIdError(
            f"SpecID event: {message}", event_index=0, offset=data_offset + at
        )

    size = len(data)
    if size < _FIXED.size:
        raise fail(f"needs at least {_FIXED.size} bytes, the event has {size}", size)
    signature, platform_class, minor, major, errata, uintn, count = _FIXED.unpack_from(data, 0)
    if signature != SPEC_ID_SIGNATURE:
        raise fail("signature is not 'Spec ID Event03'", 0)
    pos = _FIXED.size
    if count * _ALG.size + 1 > size - pos:
        raise fail(f"numberOfAlgorithms={count} overruns the {size}-byte event", pos - 4)
    if count == 0:
        raise fail("numberOfAlgorithms is 0", pos - 4)
    if count > MAX_SPEC_ID_ALGORITHMS:
        raise fail(f"numberOfAlgorithms={count} exceeds {MAX_SPEC_ID_ALGORITHMS}", pos - 4)
    algorithms: list[SpecIdAlgorithm] = []
    seen: set[int] = set()
    for _ in range(count):
        alg, digest_size = _ALG.unpack_from(data, pos)
        if alg in seen:
            raise fail(f"algorithm 0x{alg:04x} listed twice", pos)
        seen.add(alg)
        known = hash_by_alg(alg)
        if known is not None:
            if digest_size != known.digest_size:
                raise fail(
                    f"{known.name} digest size {digest_size}, not {known.digest_size}", pos + 2
                )
            name: str | None = known.name
        else:
            # An algorithm we do not implement: skip its digests by the declared size.
            if not 0 < digest_size <= MAX_DIGEST_SIZE:
                raise fail(f"algorithm 0x{alg:04x} digest size {digest_size}", pos + 2)
            name = None
        algorithms.append(SpecIdAlgorithm(alg, digest_size, name))
        pos += _ALG.size
    if not any(a.name for a in algorithms):
        raise fail("no algorithm soapattest can replay (sha1/sha256/sha384/sha512/sm3_256)", 24)
    vendor_size = data[pos]
    pos += 1
    if vendor_size > size - pos:
        raise fail(
            f"vendorInfoSize={vendor_size} overruns the event ({size - pos} bytes remain)", pos - 1
        )
    vendor_info = data[pos : pos + vendor_size]
    pos += vendor_size
    if pos != size:
        raise fail(f"{size - pos} bytes after vendorInfo", pos)
    return SpecIdEvent(
        platform_class=platform_class,
        spec_version_minor=minor,
        spec_version_major=major,
        spec_errata=errata,
        uintn_size=uintn,
        algorithms=tuple(algorithms),
        vendor_info=vendor_info,
    )
