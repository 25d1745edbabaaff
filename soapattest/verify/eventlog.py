"""Event-log appraisal: which logged events does a verified quote vouch for?

A firmware event log is untrusted text until it replays to PCR values a
verified quote signed. Rules (TCG PC Client Platform Firmware Profile, 10.4):

1. The log parses within the configured bounds.
2. Every bank the policy uses is present in the log.
3. For every quoted PCR of a policy bank that the log covers (PCR 0-9, and any
   other PCR the log extends), replaying the log gives exactly the quoted value.
   Only then are that PCR's events trusted, as a sequence.
4. Events in PCRs the quote does not cover are never trusted (reported as INFO).
5. PCR 0-7 each carry exactly one EV_SEPARATOR whose data is 0x00000000
   (0xFFFFFFFF from legacy BIOS) and whose digests are the hash of that data
   (a separator with other data, a second separator, or a relabelled event fails).
6. An event whose type defines its digest as the hash of its data (separator,
   actions, configuration variables, GPT, ...) must have such digests: a
   relabelled event (e.g. a boot application retyped as EV_EFI_ACTION) fails.

The event type is never trusted by itself: it is only a label of the data,
and digests are matched, not types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from soapattest.errors import EventLogError
from soapattest.model import Check
from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.eventlog import (
    DEFAULT_LIMITS,
    STRICT_TYPES,
    EventLog,
    EventLogLimits,
    EventRow,
    EventType,
    UntrustedEvent,
    digest_contradicts_data,
    event_type_name,
    parse_event_log,
    replay,
)
from soapattest.verify.checks import Memo, failed, hexs, info, passed, registered, remember

COMPONENT = "eventlog"
FIRMWARE_PCRS = range(8)  # PCRs whose pre-OS measurements end with an EV_SEPARATOR
LOG_COVERED_PCRS = frozenset(range(10))  # PCRs a firmware + bootloader log always accounts for
SEPARATOR_OK = (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff")  # UEFI / TCG 1.2 BIOS
SEPARATOR_ERROR = b"\x01\x00\x00\x00"
EV_SEPARATOR = int(EventType.EV_SEPARATOR)
_PARSED: Memo = registered({})  # passing checks by their inputs (see verify.checks)
_REPLAYED: Memo = registered({})
_SEPARATED: Memo = registered({})


@dataclass(frozen=True, slots=True)
class LogAppraisal:
    """Result of appraising a log against a verified quote.

    ``trusted_pcrs``: bank -> PCRs whose events replayed exactly to the quote;
    only events of those PCRs may be matched against whitelists.
    """

    checks: tuple[Check, ...]
    log: EventLog | None
    trusted_pcrs: dict[str, frozenset[int]] = field(default_factory=dict)

    def trusted_events(self, bank: str, pcr: int) -> tuple[UntrustedEvent, ...] | None:
        """Extending events of ``pcr`` when the quote vouches for them, else ``None``."""
        if self.log is None or pcr not in self.trusted_pcrs.get(bank, frozenset()):
            return None
        return self.log.extending_events(pcr)

    def trusted_digests(self, bank: str, pcr: int) -> tuple[bytes, ...] | None:
        """The ``bank`` digests of :meth:`trusted_events` (same order), without building events.

        ``None`` when the quote does not vouch for ``pcr``; ``b""`` for an event
        that logged no ``bank`` digest.
        """
        if self.log is None or pcr not in self.trusted_pcrs.get(bank, frozenset()):
            return None
        return self.log.extend_digests(bank, pcr)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(c.status.value != "FAIL" for c in self.checks)


def _events_in(log: EventLog, pcr: int) -> tuple[UntrustedEvent, ...]:
    return log.extending_events(pcr)


def _describe(events: Sequence[UntrustedEvent], limit: int = 12) -> str:
    shown = ", ".join(f"{e.index} {e.type_name}" for e in events[:limit])
    more = f" and {len(events) - limit} more" if len(events) > limit else ""
    return f"events {shown}{more}" if events else "no events"


def _replay_checks(
    log: EventLog, verified: Mapping[str, Mapping[int, bytes]], bank: str
) -> tuple[list[Check], frozenset[int]]:
    checks: list[Check] = []
    trusted: set[int] = set()
    quoted = verified.get(bank, {})
    values = replay(log, banks=[bank]).get(bank, {})
    extended = log.extended_pcrs()
    zero = bytes(hash_by_name(bank).digest_size)  # type: ignore[union-attr]
    for pcr in sorted(quoted):
        if pcr not in LOG_COVERED_PCRS and pcr not in extended:
            continue  # e.g. PCR 10 (IMA) or 11-15 (OS): not this log's business
        expected = quoted[pcr]
        actual = values.get(pcr, zero)
        if actual == expected:
            trusted.add(pcr)
            count = log.extend_count(pcr)
            key = (bank, pcr, count, actual)
            check = _REPLAYED.get(key)
            if check is None:
                check = remember(
                    _REPLAYED,
                    key,
                    passed(
                        "eventlog.replay",
                        COMPONENT,
                        f"PCR {pcr} ({bank}) replays to the quoted value ({count} events)",
                        pcr=pcr,
                        bank=bank,
                        expected=expected.hex(),
                        actual=actual.hex(),
                    ),
                )
            checks.append(check)
        else:
            involved = _events_in(log, pcr)
            checks.append(
                failed(
                    "eventlog.replay",
                    COMPONENT,
                    f"PCR {pcr} ({bank}): the event log replays to {hexs(actual, 16)} but the "
                    f"quote says {hexs(expected, 16)}; {_describe(involved)} are not trusted",
                    pcr=pcr,
                    bank=bank,
                    expected=expected.hex(),
                    actual=actual.hex(),
                )
            )
    for pcr in sorted(extended - set(quoted)):
        checks.append(
            info(
                "eventlog.unquoted",
                COMPONENT,
                f"PCR {pcr} ({bank}) is not covered by the quote: its "
                f"{log.extend_count(pcr)} events are ignored",
                pcr=pcr,
                bank=bank,
            )
        )
    return checks, frozenset(trusted)


def _separator_checks(
    log: EventLog, rows: dict[int, list[EventRow]], bank: str, trusted: frozenset[int]
) -> list[Check]:
    checks: list[Check] = []
    halg = hash_by_name(bank)
    assert halg is not None
    position = log.columns.index(bank)
    for pcr in FIRMWARE_PCRS:
        if pcr not in trusted:
            continue
        seps = [r for r in rows.get(pcr, ()) if r[2] == EV_SEPARATOR]
        if len(seps) != 1:
            what = "no EV_SEPARATOR" if not seps else f"{len(seps)} EV_SEPARATOR events"
            checks.append(
                failed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr} has {what}; exactly one ends the pre-OS measurements",
                    pcr=pcr,
                    bank=bank,
                    event_index=seps[1][0] if len(seps) > 1 else None,
                )
            )
            continue
        index, _pcr, _type, digests, data = seps[0]
        if digests[position] != halg.digest(data):
            checks.append(
                failed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr}: event {index} is labelled EV_SEPARATOR but its {bank} digest "
                    "is not the hash of its data",
                    pcr=pcr,
                    bank=bank,
                    event_index=index,
                )
            )
        elif data == SEPARATOR_ERROR:
            checks.append(
                failed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr}: the firmware logged an error separator (event {index})",
                    pcr=pcr,
                    bank=bank,
                    event_index=index,
                )
            )
        elif data not in SEPARATOR_OK:
            checks.append(
                failed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr}: separator event {index} data is {hexs(data, 16)}, "
                    "not 00000000 (or ffffffff from a legacy BIOS)",
                    pcr=pcr,
                    bank=bank,
                    event_index=index,
                )
            )
        else:
            key = (pcr, bank, index)
            check = _SEPARATED.get(key)
            if check is None:
                check = remember(
                    _SEPARATED,
                    key,
                    passed(
                        "eventlog.separator",
                        COMPONENT,
                        f"PCR {pcr} has one well-formed separator (event {index})",
                        pcr=pcr,
                        bank=bank,
                        event_index=index,
                    ),
                )
            checks.append(check)
    return checks


# Verdicts of rule 6 by event content: a pure function of (type, data, digests),
# memoised because the same firmware events come back in every quote of every
# host of a model. Keyed by type and digests; the data is compared on a hit (so
# no hash of it is computed). Bounded in entries and in the bytes it keeps alive.
_VERDICTS: dict[tuple[int, tuple[object, ...]], tuple[bytes, bool]] = registered({})
_VERDICTS_MAX = 4096
_VERDICTS_MAX_BYTES = 32 * 1024 * 1024
_verdict_bytes = 0


def _lies(log: EventLog, row: EventRow) -> bool:
    global _verdict_bytes
    etype, data = row[2], row[4]
    key = (etype, log.row_digest_key(row))
    hit = _VERDICTS.get(key)
    if hit is not None and hit[0] == data:
        return hit[1]
    verdict = digest_contradicts_data(etype, data, log.row_digests(row))
    if len(_VERDICTS) >= _VERDICTS_MAX or _verdict_bytes > _VERDICTS_MAX_BYTES:
        _VERDICTS.clear()
        _verdict_bytes = 0
    _VERDICTS[key] = (data, verdict)
    _verdict_bytes += len(data)
    return verdict


def _liars(log: EventLog, rows: dict[int, list[EventRow]], pcr: int) -> list[EventRow]:
    """Events of ``pcr`` whose type defines the digest over the data, and whose digests lie.

    Only types in :data:`STRICT_TYPES` can lie (``digest_verified`` is then
    ``False``); every other type is at most unverifiable, never false.
    """
    return [r for r in rows.get(pcr, ()) if _lies(log, r)]


def _consistency_checks(
    log: EventLog,
    rows: dict[int, list[EventRow]],
    bank: str,
    trusted: frozenset[int],
    liars: dict[int, list[EventRow]],
) -> list[Check]:
    checks: list[Check] = []
    for pcr in sorted(trusted):
        found = liars.get(pcr)
        if found is None:
            found = liars[pcr] = _liars(log, rows, pcr)  # once per PCR, whatever the banks
        for index, _pcr, etype, _digests, _data in found:
            checks.append(
                failed(
                    "eventlog.event_type",
                    COMPONENT,
                    f"PCR {pcr}: event {index} is labelled {event_type_name(etype)}, whose "
                    "digest is the hash of its data, but its digest is not: the label is false",
                    pcr=pcr,
                    bank=bank,
                    event_index=index,
                )
            )
    return checks


def appraise_event_log(
    log_bytes: bytes,
    verified: Mapping[str, Mapping[int, bytes]],
    banks: Sequence[str],
    *,
    limits: EventLogLimits = DEFAULT_LIMITS,
) -> LogAppraisal:
    """Appraise a measured-boot log against ``verified`` PCR values, in the policy's ``banks``.

    ``verified`` must hold only values a quote signature vouched for
    (:attr:`VerifiedQuote.pcrs`, or the PCRs of a stored trust report). Returns a
    :class:`LogAppraisal` whose checks list every step; never raises for bad input
    (a malformed log is a FAIL check).
    """
    checks: list[Check] = []
    # 1. Parse.
    try:
        log = parse_event_log(log_bytes, limits=limits)
    except EventLogError as exc:
        checks.append(failed("eventlog.parse", COMPONENT, f"event log rejected: {exc.message}"))
        return LogAppraisal(tuple(checks), None)
    key = (log.format, log.event_count)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = remember(
            _PARSED,
            key,
            passed(
                "eventlog.parse",
                COMPONENT,
                f"{log.format} event log with {log.event_count} events parses",
            ),
        )
    checks.append(parsed)
    trusted: dict[str, frozenset[int]] = {}
    rows: dict[int, list[EventRow]] | None = None
    liars: dict[int, list[EventRow]] = {}
    for bank in banks:
        # 2. Bank present.
        if bank not in log.banks:
            checks.append(
                failed(
                    "eventlog.bank",
                    COMPONENT,
                    f"the event log has no {bank} digests (it has {', '.join(log.banks)})",
                    bank=bank,
                )
            )
            continue
        if bank not in verified:
            checks.append(
                failed("eventlog.bank", COMPONENT, f"the quote covers no {bank} PCR", bank=bank)
            )
            continue
        # 3-4. Replay against the quote.
        replay_checks, trusted_pcrs = _replay_checks(log, verified, bank)
        checks.extend(replay_checks)
        trusted[bank] = trusted_pcrs
        if rows is None:  # the separators and the types that can lie, by PCR (once)
            rows = log.rows_of_types(STRICT_TYPES)
        # 5. Separators.
        checks.extend(_separator_checks(log, rows, bank, trusted_pcrs))
        # 6. Labels consistent with digests.
        checks.extend(_consistency_checks(log, rows, bank, trusted_pcrs, liars))
    return LogAppraisal(tuple(checks), log, trusted)
