"""Matching verified measurements against one whitelist.

A host satisfies a whitelist in a bank when:

1. the whitelist has at least one entry in that bank (an empty whitelist
   never matches: there is no accept-all);
2. every PCR with PCR-value entries was quoted and its verified value is one
   of the listed values;
3. for every PCR with event entries, the quote vouches for the PCR's events
   (the log replayed) and every extending event's digest is listed for that
   PCR. Events the whitelist does not know are reported one by one.

IMA entries are matched by :mod:`soapattest.verify.ima`.
"""

from __future__ import annotations

from collections.abc import Sequence

from soapattest.model import Check, EntryKind, Whitelist
from soapattest.verify.checks import failed, hexs, passed
from soapattest.verify.eventlog import LogAppraisal
from soapattest.verify.quote import VerifiedQuote


def component(whitelist: Whitelist) -> str:
    """The report component name of a whitelist."""
    return f"whitelist:{whitelist.name}"


def _pcr_value_checks(wl: Whitelist, bank: str, quote: VerifiedQuote) -> list[Check]:
    comp = component(wl)
    checks: list[Check] = []
    for pcr, allowed in sorted(wl.pcr_values(bank).items()):
        actual = quote.value(bank, pcr)
        if actual is None:
            checks.append(
                failed(
                    "whitelist.pcr",
                    comp,
                    f"PCR {pcr} ({bank}) is required by whitelist '{wl.name}' but was not quoted",
                    pcr=pcr,
                    bank=bank,
                )
            )
        elif actual in allowed:
            checks.append(
                passed(
                    "whitelist.pcr",
                    comp,
                    f"PCR {pcr} ({bank}) matches whitelist '{wl.name}' v{wl.version}",
                    pcr=pcr,
                    bank=bank,
                    actual=actual.hex(),
                )
            )
        else:
            checks.append(
                failed(
                    "whitelist.pcr",
                    comp,
                    f"PCR {pcr} ({bank}) value {hexs(actual, 16)} is not in whitelist "
                    f"'{wl.name}' v{wl.version}",
                    pcr=pcr,
                    bank=bank,
                    expected=" | ".join(sorted(v.hex() for v in allowed)),
                    actual=actual.hex(),
                )
            )
    return checks


def _event_checks(wl: Whitelist, bank: str, log: LogAppraisal | None) -> list[Check]:
    comp = component(wl)
    checks: list[Check] = []
    for pcr, allowed in sorted(wl.event_digests(bank).items()):
        events = log.trusted_events(bank, pcr) if log is not None else None
        if events is None:
            checks.append(
                failed(
                    "whitelist.event",
                    comp,
                    f"PCR {pcr} ({bank}): events cannot be matched against whitelist "
                    f"'{wl.name}': the quote does not vouch for this PCR's event log",
                    pcr=pcr,
                    bank=bank,
                )
            )
            continue
        unknown = [e for e in events if e.digests.get(bank) not in allowed]
        for event in unknown:
            digest = event.digests.get(bank)
            checks.append(
                failed(
                    "whitelist.event",
                    comp,
                    f"PCR {pcr}: event {event.index} {event.type_name} digest {hexs(digest, 8)} "
                    f"is not in whitelist '{wl.name}'",
                    pcr=pcr,
                    bank=bank,
                    event_index=event.index,
                    actual=hexs(digest),
                )
            )
        if not unknown:
            checks.append(
                passed(
                    "whitelist.event",
                    comp,
                    f"PCR {pcr} ({bank}): all {len(events)} events are in whitelist '{wl.name}'",
                    pcr=pcr,
                    bank=bank,
                )
            )
    return checks


def evaluate_whitelist(
    wl: Whitelist,
    banks: Sequence[str],
    quote: VerifiedQuote,
    log: LogAppraisal | None,
) -> list[Check]:
    """Match the verified quote (and trusted events) against ``wl`` in ``banks``."""
    checks: list[Check] = []
    for bank in banks:
        # 1. No accept-all: the whitelist must say something about this bank.
        if not wl.pcrs(bank):
            checks.append(
                failed(
                    "whitelist.bank",
                    component(wl),
                    f"whitelist '{wl.name}' v{wl.version} has no {bank} entries",
                    bank=bank,
                )
            )
            continue
        checks.extend(_pcr_value_checks(wl, bank, quote))  # 2.
        checks.extend(_event_checks(wl, bank, log))  # 3.
    return checks


def required_pcrs(whitelists: Sequence[Whitelist], bank: str) -> set[int]:
    """PCR indices of ``bank`` that the whitelists constrain (PCR and event entries)."""
    out: set[int] = set()
    for wl in whitelists:
        out |= {e.pcr for e in wl.entries if e.kind is not EntryKind.IMA and e.bank == bank}
    return out
