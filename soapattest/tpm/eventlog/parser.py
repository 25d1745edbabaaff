"""Strict, bounded parser of TCG PC Client firmware event logs.

Two formats (TCG PC Client Platform Firmware Profile rev 1.05/1.06, section 10):

- crypto-agile: a first TCG_PCClientPCREvent (SHA-1 layout) carrying the
  TCG_EfiSpecIDEvent "Spec ID Event03", then TCG_PCR_EVENT2 events whose
  TPML_DIGEST_VALUES hold one digest per SpecID algorithm;
- TCG 1.2 / legacy: TCG_PCClientPCREvent events only (one SHA-1 digest each).

Every length is checked against the bytes that remain *before* it is used, so a
hostile size field costs nothing; limits bound total work and memory. Every
rejection is an :class:`~soapattest.errors.EventLogError` subclass carrying the
event index and the byte offset in the log.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from soapattest.errors import (
    EventLogDigestCountError,
    EventLogDuplicateDigestError,
    EventLogEmptyError,
    EventLogLimitError,
    EventLogPcrIndexError,
    EventLogSpecIdError,
    EventLogStartupLocalityError,
    EventLogTruncatedError,
    EventLogUnknownAlgorithmError,
)
from soapattest.tpm.constants import PCR_COUNT
from soapattest.tpm.eventlog.eventtypes import EV_EFI_HCRTM_EVENT, EV_NO_ACTION
from soapattest.tpm.eventlog.model import (
    DEFAULT_LIMITS,
    FORMAT_CRYPTO_AGILE,
    FORMAT_TCG12_SHA1,
    CompactEvents,
    EventLog,
    EventLogLimits,
    Record,
    SpecIdAlgorithm,
    SpecIdEvent,
    UntrustedEvent,
)
from soapattest.tpm.eventlog.specid import SPEC_ID_SIGNATURE, parse_spec_id

STARTUP_LOCALITY_SIGNATURE = b"StartupLocality\x00"
STARTUP_LOCALITY_SIZE = len(STARTUP_LOCALITY_SIGNATURE) + 1
# TPM2_Startup is accepted from locality 0 or 3; 4 marks an H-CRTM start (PFP 10.4.5.3,
# TPM 2.0 Part 1 section 34.3).
STARTUP_LOCALITIES = frozenset({0, 3, 4})
HCRTM_LOCALITY = 4

_LEGACY_HEADER = struct.Struct("<II20sI")  # pcrIndex, eventType, digest, eventSize
_EVENT2_HEADER = struct.Struct("<III")  # pcrIndex, eventType, digests.count
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


def parse_event_log(data: bytes, *, limits: EventLogLimits = DEFAULT_LIMITS) -> EventLog:
    """Parse an untrusted firmware event log (``binary_bios_measurements``).

    Input: the raw log bytes. Output: an :class:`EventLog` whose events are
    exactly as logged (nothing is verified here: replay the log and compare
    with a verified quote before trusting any event).

    Raises (all :class:`~soapattest.errors.EventLogError`, with ``event_index``
    and ``offset``): ``EventLogEmptyError``, ``EventLogLimitError`` (size, event
    count or event data size over ``limits``), ``EventLogTruncatedError``,
    ``EventLogSpecIdError``, ``EventLogPcrIndexError``,
    ``EventLogUnknownAlgorithmError``, ``EventLogDuplicateDigestError``,
    ``EventLogDigestCountError``, ``EventLogStartupLocalityError``.
    Nothing else escapes, whatever the bytes (a non-bytes argument is a
    programming error: TypeError).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"an event log is bytes, not {type(data).__name__}")
    size = memoryview(data).nbytes
    if size > limits.max_log_bytes:
        raise EventLogLimitError(
            f"the log is {size} bytes, more than the limit of {limits.max_log_bytes}", offset=0
        )
    raw = data if type(data) is bytes else bytes(data)
    if size == 0:
        raise EventLogEmptyError("the event log is empty", offset=0)
    # 1. The first event always has the TCG_PCClientPCREvent (SHA-1) layout (PFP 10.2.1).
    first, pos = _legacy_event(raw, 0, 0, limits)
    if first.data[: len(SPEC_ID_SIGNATURE)] == SPEC_ID_SIGNATURE:
        # 2. "Spec ID Event03": a crypto-agile log (PFP 10.4.5.1).
        if first.pcr != 0 or first.untrusted_type != EV_NO_ACTION:
            raise EventLogSpecIdError(
                "a Spec ID Event03 header must be an EV_NO_ACTION event in PCR 0",
                event_index=0,
                offset=0,
            )
        spec_id = parse_spec_id(first.data, data_offset=_LEGACY_HEADER.size)
        compact, special = _parse_agile(raw, pos, first, spec_id, limits)
        log_format = FORMAT_CRYPTO_AGILE
    else:
        # 3. No SpecID: a TCG 1.2 SHA-1 log, every event in the legacy layout.
        spec_id = None
        compact, special = _parse_legacy(raw, pos, first, limits)
        log_format = FORMAT_TCG12_SHA1
    locality, hcrtm = _startup_state(compact, special)
    return EventLog(log_format, compact.banks, spec_id, locality, hcrtm, compact)


def _limit_events(index: int, offset: int, limits: EventLogLimits) -> None:
    if index >= limits.max_events:
        raise EventLogLimitError(
            f"more than {limits.max_events} events", event_index=index, offset=offset
        )


def _check_pcr(pcr: int, etype: int, index: int, offset: int) -> None:
    """PCR 0..23; EV_NO_ACTION events, never extended, may name any index (Windows
    logs put trust-point EV_NO_ACTION events in "PCR" 0xFFFFFFFF)."""
    if pcr >= PCR_COUNT and etype != EV_NO_ACTION:
        raise EventLogPcrIndexError(
            f"PCR index {pcr} of an extending event is outside 0..{PCR_COUNT - 1}",
            pcr=pcr,
            event_index=index,
            offset=offset,
        )


def _check_event_size(size: int, at: int, end: int, index: int, limits: EventLogLimits) -> None:
    """``at`` is the offset of the eventSize field itself."""
    if size > limits.max_event_data_bytes:
        raise EventLogLimitError(
            f"event data size {size} exceeds the limit of {limits.max_event_data_bytes}",
            event_index=index,
            offset=at,
        )
    if size > end - at - 4:
        raise EventLogTruncatedError(
            f"event data size {size} exceeds the {end - at - 4} bytes that remain",
            event_index=index,
            offset=at,
        )


def _legacy_event(
    raw: bytes, pos: int, index: int, limits: EventLogLimits
) -> tuple[UntrustedEvent, int]:
    """One TCG_PCClientPCREvent at ``pos``: the event and the offset after it."""
    end = len(raw)
    if end - pos < _LEGACY_HEADER.size:
        raise EventLogTruncatedError(
            f"event header needs {_LEGACY_HEADER.size} bytes, {end - pos} remain",
            event_index=index,
            offset=pos,
        )
    pcr, etype, digest, esize = _LEGACY_HEADER.unpack_from(raw, pos)
    _check_event_size(esize, pos + 28, end, index, limits)
    _check_pcr(pcr, etype, index, pos)
    start = pos + _LEGACY_HEADER.size
    event = UntrustedEvent(index, pos, pcr, etype, {"sha1": digest}, raw[start : start + esize])
    return event, start + esize


def _parse_legacy(
    raw: bytes, pos: int, first: UntrustedEvent, limits: EventLogLimits
) -> tuple[CompactEvents, list[int]]:
    end = len(raw)
    header = _LEGACY_HEADER
    hsize = header.size
    records: list[Record] = []
    chains: dict[int, list[tuple[bytes, ...]]] = {}
    special: list[int] = [0]  # indices of EV_NO_ACTION / EV_EFI_HCRTM_EVENT events
    if first.untrusted_type != EV_NO_ACTION:
        chains[first.pcr] = [(first.digests["sha1"],)]
    index = 1
    max_events = limits.max_events
    max_data = limits.max_event_data_bytes
    while pos < end:
        if index >= max_events:
            _limit_events(index, pos, limits)
        if end - pos < hsize:
            raise EventLogTruncatedError(
                f"event header needs {hsize} bytes, {end - pos} remain",
                event_index=index,
                offset=pos,
            )
        pcr, etype, digest, esize = header.unpack_from(raw, pos)
        start = pos + hsize
        if esize > max_data or esize > end - start:
            _check_event_size(esize, start - 4, end, index, limits)
        if pcr >= PCR_COUNT:
            _check_pcr(pcr, etype, index, pos)
        digests = (digest,)
        records.append((pos, pcr, etype, digests, raw[start : start + esize]))
        if etype != EV_NO_ACTION:
            chain = chains.get(pcr)
            if chain is None:
                chains[pcr] = [digests]
            else:
                chain.append(digests)
            if etype == EV_EFI_HCRTM_EVENT:
                special.append(index)
        else:
            special.append(index)
        pos = start + esize
        index += 1
    return CompactEvents(("sha1",), ("sha1",), (first,), records, chains), special


def _parse_agile(
    raw: bytes, pos: int, first: UntrustedEvent, spec_id: SpecIdEvent, limits: EventLogLimits
) -> tuple[CompactEvents, list[int]]:
    end = len(raw)
    algs = spec_id.algorithms
    count = len(algs)
    by_id = {a.alg: a for a in algs}
    columns = tuple(a.name for a in algs if a.name is not None)
    incomplete: set[int] = set()  # columns some extending event has no digest for
    keep = [i for i, a in enumerate(algs) if a.name is not None]
    all_known = len(keep) == count
    # Fast path, one unpack per event: header, the digests in SpecID order (the
    # way firmware writes them) and eventSize. Anything else takes the slow path.
    fast = struct.Struct("<III" + "".join(f"H{a.digest_size}s" for a in algs) + "I")
    fast_size = fast.size
    expected_ids = tuple(a.alg for a in algs)
    header = _EVENT2_HEADER
    u32 = _U32
    records: list[Record] = []
    chains: dict[int, list[tuple[bytes, ...]]] = {}
    special: list[int] = [0]  # indices of EV_NO_ACTION / EV_EFI_HCRTM_EVENT events
    index = 1
    max_events = limits.max_events
    max_data = limits.max_event_data_bytes
    run = _RUNS.get(count) if all_known else None
    idle_runs = 0
    while pos < end:
        if run is not None:
            # Hot path: consecutive events of the SpecID layout that pass every
            # check below; it stops before anything else, which this loop handles.
            start = pos
            pos, index = run(raw, pos, index, fast, expected_ids, max_events, max_data,
                             records, chains, special)
            if pos >= end:
                break
            if pos == start:
                idle_runs += 1
                if idle_runs > _MAX_IDLE_RUNS:  # an unusual layout: stop trying
                    run = None
        if index >= max_events:
            _limit_events(index, pos, limits)
        if end - pos >= fast_size:
            values = fast.unpack_from(raw, pos)
            pcr = values[0]
            etype = values[1]
            fast_ok = values[2] == count and values[3:-1:2] == expected_ids
        else:
            fast_ok = False
        if fast_ok:
            found = values[4:-1:2]
            digests = found if all_known else tuple(found[i] for i in keep)
            esize = values[-1]
            p = pos + fast_size
        else:
            if end - pos < 12:
                raise EventLogTruncatedError(
                    f"TCG_PCR_EVENT2 header needs 12 bytes, {end - pos} remain",
                    event_index=index,
                    offset=pos,
                )
            pcr, etype, dcount = header.unpack_from(raw, pos)
            if dcount > count:
                raise EventLogDigestCountError(
                    f"TPML_DIGEST_VALUES.count is {dcount}, the SpecID event declares only "
                    f"{count} algorithms",
                    event_index=index,
                    offset=pos + 8,
                )
            digests, p = _digests_any_order(raw, pos + 12, dcount, spec_id, by_id, index)
            if etype != EV_NO_ACTION:
                incomplete.update(i for i, d in enumerate(digests) if not d)
            if end - p < 4:
                raise EventLogTruncatedError(
                    f"eventSize needs 4 bytes, {end - p} remain", event_index=index, offset=p
                )
            (esize,) = u32.unpack_from(raw, p)
            p += 4
        if pcr >= PCR_COUNT:
            _check_pcr(pcr, etype, index, pos)
        if esize > max_data or esize > end - p:
            _check_event_size(esize, p - 4, end, index, limits)
        records.append((pos, pcr, etype, digests, raw[p : p + esize]))
        if etype != EV_NO_ACTION:
            chain = chains.get(pcr)
            if chain is None:
                chains[pcr] = [digests]
            else:
                chain.append(digests)
            if etype == EV_EFI_HCRTM_EVENT:
                special.append(index)
        else:
            special.append(index)
        pos = p + esize
        index += 1
    complete = tuple(c for i, c in enumerate(columns) if i not in incomplete)
    return CompactEvents(columns, complete, (first,), records, chains), special


_MAX_IDLE_RUNS = 8


def _run1(
    raw: bytes, pos: int, index: int, fast: struct.Struct, ids: tuple[int, ...],
    max_events: int, max_data: int, records: list[Record],
    chains: dict[int, list[tuple[bytes, ...]]], special: list[int],
) -> tuple[int, int]:
    """Events with one digest in the SpecID layout, from ``pos``; ``(pos, index)`` after them.

    Stops (without consuming) at the first event that is not of that layout or
    fails a check of :func:`_parse_agile` (PCR index, size, event count).
    """
    (a1,) = ids
    unpack, size = fast.unpack_from, fast.size
    end = len(raw)
    last = end - size
    append = records.append
    while pos <= last and index < max_events:
        pcr, etype, n, x1, d1, esize = unpack(raw, pos)
        p = pos + size
        if n != 1 or x1 != a1 or pcr >= PCR_COUNT or esize > max_data or esize > end - p:
            break
        digests = (d1,)
        append((pos, pcr, etype, digests, raw[p : p + esize]))
        if etype != EV_NO_ACTION:
            chain = chains.get(pcr)
            if chain is None:
                chains[pcr] = [digests]
            else:
                chain.append(digests)
            if etype == EV_EFI_HCRTM_EVENT:
                special.append(index)
        else:
            special.append(index)
        pos = p + esize
        index += 1
    return pos, index


def _run2(
    raw: bytes, pos: int, index: int, fast: struct.Struct, ids: tuple[int, ...],
    max_events: int, max_data: int, records: list[Record],
    chains: dict[int, list[tuple[bytes, ...]]], special: list[int],
) -> tuple[int, int]:
    """:func:`_run1` for two digests."""
    a1, a2 = ids
    unpack, size = fast.unpack_from, fast.size
    end = len(raw)
    last = end - size
    append = records.append
    while pos <= last and index < max_events:
        pcr, etype, n, x1, d1, x2, d2, esize = unpack(raw, pos)
        p = pos + size
        if (
            n != 2 or x1 != a1 or x2 != a2 or pcr >= PCR_COUNT
            or esize > max_data or esize > end - p
        ):
            break
        digests = (d1, d2)
        append((pos, pcr, etype, digests, raw[p : p + esize]))
        if etype != EV_NO_ACTION:
            chain = chains.get(pcr)
            if chain is None:
                chains[pcr] = [digests]
            else:
                chain.append(digests)
            if etype == EV_EFI_HCRTM_EVENT:
                special.append(index)
        else:
            special.append(index)
        pos = p + esize
        index += 1
    return pos, index


def _run3(
    raw: bytes, pos: int, index: int, fast: struct.Struct, ids: tuple[int, ...],
    max_events: int, max_data: int, records: list[Record],
    chains: dict[int, list[tuple[bytes, ...]]], special: list[int],
) -> tuple[int, int]:
    """:func:`_run1` for three digests."""
    a1, a2, a3 = ids
    unpack, size = fast.unpack_from, fast.size
    end = len(raw)
    last = end - size
    append = records.append
    while pos <= last and index < max_events:
        pcr, etype, n, x1, d1, x2, d2, x3, d3, esize = unpack(raw, pos)
        p = pos + size
        if (
            n != 3 or x1 != a1 or x2 != a2 or x3 != a3 or pcr >= PCR_COUNT
            or esize > max_data or esize > end - p
        ):
            break
        digests = (d1, d2, d3)
        append((pos, pcr, etype, digests, raw[p : p + esize]))
        if etype != EV_NO_ACTION:
            chain = chains.get(pcr)
            if chain is None:
                chains[pcr] = [digests]
            else:
                chain.append(digests)
            if etype == EV_EFI_HCRTM_EVENT:
                special.append(index)
        else:
            special.append(index)
        pos = p + esize
        index += 1
    return pos, index


_Run = Callable[
    [bytes, int, int, struct.Struct, tuple[int, ...], int, int, list[Record],
     dict[int, list[tuple[bytes, ...]]], list[int]],
    tuple[int, int],
]
_RUNS: dict[int, _Run] = {1: _run1, 2: _run2, 3: _run3}


def _digests_any_order(
    raw: bytes,
    p: int,
    dcount: int,
    spec_id: SpecIdEvent,
    by_id: dict[int, SpecIdAlgorithm],
    index: int,
) -> tuple[tuple[bytes, ...], int]:
    """TPML_DIGEST_VALUES in any order, each algorithm of the SpecID at most once.

    Returns the digests in SpecID order of the implemented algorithms, ``b""``
    where the event has none (PFP: every bank should be present; tpm2-tools
    test logs omit some, so a missing bank only stops that bank's replay).
    """
    end = len(raw)
    found: dict[int, bytes] = {}
    for _ in range(dcount):
        if end - p < 2:
            raise EventLogTruncatedError(
                f"digest algorithm needs 2 bytes, {end - p} remain", event_index=index, offset=p
            )
        (alg,) = _U16.unpack_from(raw, p)
        entry = by_id.get(alg)
        if entry is None:
            raise EventLogUnknownAlgorithmError(
                f"digest algorithm 0x{alg:04x} is not declared by the SpecID event",
                alg=alg,
                event_index=index,
                offset=p,
            )
        if alg in found:
            raise EventLogDuplicateDigestError(
                f"two digests of algorithm 0x{alg:04x}", alg=alg, event_index=index, offset=p
            )
        size = entry.digest_size
        if end - p - 2 < size:
            raise EventLogTruncatedError(
                f"digest of algorithm 0x{alg:04x} needs {size} bytes, {end - p - 2} remain",
                event_index=index,
                offset=p + 2,
            )
        found[alg] = raw[p + 2 : p + 2 + size]
        p += 2 + size
    ordered = tuple(found.get(a.alg, b"") for a in spec_id.algorithms if a.name is not None)
    return ordered, p


def _startup_state(compact: CompactEvents, special: list[int]) -> tuple[int | None, bool]:
    """StartupLocality value and H-CRTM flag from PCR0 events (PFP 10.4.5.3, 10.4.5.4).

    ``special`` lists the indices of the EV_NO_ACTION and EV_EFI_HCRTM_EVENT events.
    """
    locality: int | None = None
    hcrtm = False
    head = compact.head
    records = compact.records
    for index in special:
        if index < len(head):
            ev = head[index]
            off, pcr, etype, data = ev.offset, ev.pcr, ev.untrusted_type, ev.data
        else:
            off, pcr, etype, _digests, data = records[index - len(head)]
        if pcr != 0:
            continue
        if etype == EV_EFI_HCRTM_EVENT:
            hcrtm = True
            continue
        if etype != EV_NO_ACTION or not data.startswith(STARTUP_LOCALITY_SIGNATURE):
            continue
        if len(data) != STARTUP_LOCALITY_SIZE:
            raise EventLogStartupLocalityError(
                f"StartupLocality event data is {len(data)} bytes, not {STARTUP_LOCALITY_SIZE}",
                event_index=index,
                offset=off,
            )
        if locality is not None:
            raise EventLogStartupLocalityError(
                "a second StartupLocality event", event_index=index, offset=off
            )
        value = data[-1]
        if value not in STARTUP_LOCALITIES:
            raise EventLogStartupLocalityError(
                f"StartupLocality {value} is not 0, 3 or 4 (H-CRTM)",
                event_index=index,
                offset=off,
            )
        locality = value
    if locality == HCRTM_LOCALITY:
        hcrtm = True
    return locality, hcrtm
