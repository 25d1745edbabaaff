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
    EventLog,
    EventLogLimits,
    EventType,
    UntrustedEvent,
    digest_verified,
    parse_event_log,
    replay,
)
from soapattest.verify.checks import failed, hexs, info, passed

COMPONENT = "eventlog"
FIRMWARE_PCRS = range(8)  # PCRs whose pre-OS measurements end with an EV_SEPARATOR
LOG_COVERED_PCRS = frozenset(range(10))  # PCRs a firmware + bootloader log always accounts for
SEPARATOR_OK = (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff")  # UEFI / TCG 1.2 BIOS
SEPARATOR_ERROR = b"\x01\x00\x00\x00"


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
        return tuple(e for e in self.log.events if e.pcr == pcr and e.extends)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(c.status.value != "FAIL" for c in self.checks)


def _events_in(log: EventLog, pcr: int) -> list[UntrustedEvent]:
    return [e for e in log.events if e.pcr == pcr and e.extends]


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
    extended = {e.pcr for e in log.events if e.extends}
    zero = bytes(hash_by_name(bank).digest_size)  # type: ignore[union-attr]
    for pcr in sorted(quoted):
        if pcr not in LOG_COVERED_PCRS and pcr not in extended:
            continue  # e.g. PCR 10 (IMA) or 11-15 (OS): not this log's business
        expected = quoted[pcr]
        actual = values.get(pcr, zero)
        if actual == expected:
            trusted.add(pcr)
            checks.append(
                passed(
                    "eventlog.replay",
                    COMPONENT,
                    f"PCR {pcr} ({bank}) replays to the quoted value "
                    f"({len(_events_in(log, pcr))} events)",
                    pcr=pcr,
                    bank=bank,
                    expected=expected.hex(),
                    actual=actual.hex(),
                )
            )
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
                f"{len(_events_in(log, pcr))} events are ignored",
                pcr=pcr,
                bank=bank,
            )
        )
    return checks, frozenset(trusted)


def _separator_checks(log: EventLog, bank: str, trusted: frozenset[int]) -> list[Check]:
    checks: list[Check] = []
    halg = hash_by_name(bank)
    assert halg is not None
    for pcr in FIRMWARE_PCRS:
        if pcr not in trusted:
            continue
        seps = [e for e in _events_in(log, pcr) if e.untrusted_type == EventType.EV_SEPARATOR]
        if len(seps) != 1:
            what = "no EV_SEPARATOR" if not seps else f"{len(seps)} EV_SEPARATOR events"
            checks.append(
                failed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr} has {what}; exactly one ends the pre-OS measurements",
                    pcr=pcr,
                    bank=bank,
                    event_index=seps[1].index if len(seps) > 1 else None,
                )
            )
            continue
        sep = seps[0]
        if sep.digests.get(bank) != halg.digest(sep.data):
            checks.append(
                failed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr}: event {sep.index} is labelled EV_SEPARATOR but its {bank} digest "
                    "is not the hash of its data",
                    pcr=pcr,
                    bank=bank,
                    event_index=sep.index,
                )
            )
        elif sep.data == SEPARATOR_ERROR:
            checks.append(
                failed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr}: the firmware logged an error separator (event {sep.index})",
                    pcr=pcr,
                    bank=bank,
                    event_index=sep.index,
                )
            )
        elif sep.data not in SEPARATOR_OK:
            checks.append(
                failed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr}: separator event {sep.index} data is {hexs(sep.data, 16)}, "
                    "not 00000000 (or ffffffff from a legacy BIOS)",
                    pcr=pcr,
                    bank=bank,
                    event_index=sep.index,
                )
            )
        else:
            checks.append(
                passed(
                    "eventlog.separator",
                    COMPONENT,
                    f"PCR {pcr} has one well-formed separator (event {sep.index})",
                    pcr=pcr,
                    bank=bank,
                    event_index=sep.index,
                )
            )
    return checks


def _consistency_checks(log: EventLog, bank: str, trusted: frozenset[int]) -> list[Check]:
    checks: list[Check] = []
    for pcr in sorted(trusted):
        liars = [e for e in _events_in(log, pcr) if digest_verified(e) is False]
        for e in liars:
            checks.append(
                failed(
                    "eventlog.event_type",
                    COMPONENT,
                    f"PCR {pcr}: event {e.index} is labelled {e.type_name}, whose digest is the "
                    "hash of its data, but its digest is not: the label is false",
                    pcr=pcr,
                    bank=bank,
                    event_index=e.index,
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
    checks.append(
        passed(
            "eventlog.parse",
            COMPONENT,
            f"{log.format} event log with {len(log.events)} events parses",
        )
    )
    trusted: dict[str, frozenset[int]] = {}
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
        # 5. Separators.
        checks.extend(_separator_checks(log, bank, trusted_pcrs))
        # 6. Labels consistent with digests.
        checks.extend(_consistency_checks(log, bank, trusted_pcrs))
    return LogAppraisal(tuple(checks), log, trusted)
