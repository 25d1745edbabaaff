"""Test helpers that rewrite event logs: re-serialise, retype, replace digests, insert events."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping

from soapattest.tpm.constants import HASH_BY_NAME
from soapattest.tpm.eventlog import EventLog, UntrustedEvent, parse_event_log


def serialize(log: EventLog, events: Iterable[UntrustedEvent] | None = None) -> bytes:
    """A crypto-agile log with ``log``'s SpecID header and ``events`` (default: the log's own).

    Events carry the digests of ``log.banks`` in that order.
    """
    all_events = list(log.events if events is None else events)
    head = all_events[0]
    out = struct.pack("<II20sI", head.pcr, head.untrusted_type, bytes(20), len(head.data))
    out += head.data
    for ev in all_events[1:]:
        out += struct.pack("<III", ev.pcr & 0xFFFFFFFF, ev.untrusted_type, len(log.banks))
        for bank in log.banks:
            out += struct.pack("<H", HASH_BY_NAME[bank].alg) + ev.digests[bank]
        out += struct.pack("<I", len(ev.data)) + ev.data
    return out


def event(
    log: EventLog, pcr: int, etype: int, data: bytes, digests: Mapping[str, bytes] | None = None
) -> UntrustedEvent:
    """A new event whose digests are H(data) in every bank of ``log`` unless given."""
    digs = dict(digests) if digests else {b: hashlib.new(b, data).digest() for b in log.banks}
    return UntrustedEvent(-1, -1, pcr, etype, digs, data)


def with_events(log: EventLog, events: list[UntrustedEvent]) -> tuple[bytes, EventLog]:
    """Serialise ``events`` under ``log``'s header, and parse it back."""
    raw = serialize(log, events)
    return raw, parse_event_log(raw)


def replace_event(ev: UntrustedEvent, **changes: object) -> UntrustedEvent:
    """A copy of ``ev`` with fields changed (untrusted_type, digests, data, pcr)."""
    fields = {
        "index": ev.index,
        "offset": ev.offset,
        "pcr": ev.pcr,
        "untrusted_type": ev.untrusted_type,
        "digests": dict(ev.digests),
        "data": ev.data,
    }
    fields.update(changes)
    return UntrustedEvent(**fields)  # type: ignore[arg-type]
