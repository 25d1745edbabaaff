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
from dataclasses import dataclass

from soapattest.model import Check, EntryKind, Whitelist
from soapattest.verify.checks import Memo, failed, hexs, passed, registered, remember
from soapattest.verify.eventlog import LogAppraisal
from soapattest.verify.quote import VerifiedQuote


def component(whitelist: Whitelist) -> str:
    """The report component name of a whitelist."""
    return f"whitelist:{whitelist.name}"


@dataclass(frozen=True, slots=True)
class _BankIndex:
    pcrs: frozenset[int]  # every PCR the whitelist constrains in the bank
    pcr_values: tuple[tuple[int, frozenset[bytes]], ...]  # by PCR, ascending
    event_digests: tuple[tuple[int, frozenset[bytes]], ...]  # by PCR, ascending


@dataclass(frozen=True, slots=True)
class WhitelistIndex:
    """A whitelist's entries grouped for matching, built in one pass over them."""

    component: str
    banks: dict[str, _BankIndex]

    def bank(self, bank: str) -> _BankIndex:
        """The entries of ``bank`` (empty when there are none)."""
        return self.banks.get(bank, _EMPTY)


_EMPTY = _BankIndex(frozenset(), (), ())
# Passing checks by the exact inputs of their fields (whitelist name and version
# included), shared by every report that has them.
_PASSING: Memo = registered({})
# Indexes by whitelist object: Whitelist is immutable, and the cache keeps the
# object alive, so its id() cannot be reused while the entry exists.
_INDEXES: dict[int, tuple[Whitelist, WhitelistIndex]] = registered({})
_INDEX_MAX = 512
_INDEX_MAX_ENTRIES = 200_000  # entries of the whitelists kept alive by the memo
_indexed_entries = 0


def whitelist_index(wl: Whitelist) -> WhitelistIndex:
    """The (memoised) :class:`WhitelistIndex` of ``wl``."""
    hit = _INDEXES.get(id(wl))
    if hit is not None and hit[0] is wl:
        return hit[1]
    # One pass (enum members compared by identity: hashing them is slow).
    pcr_kind, event_kind = EntryKind.PCR, EntryKind.EVENT
    by_value: dict[tuple[str, int], set[bytes]] = {}
    by_event: dict[tuple[str, int], set[bytes]] = {}
    for e in wl.entries:
        kind = e.kind
        if kind is pcr_kind:
            target = by_value
        elif kind is event_kind:
            target = by_event
        else:
            continue  # IMA entries: soapattest.verify.ima
        key = (e.bank, e.pcr)
        found = target.get(key)
        if found is None:
            target[key] = {e.digest}
        else:
            found.add(e.digest)
    values: dict[str, dict[int, set[bytes]]] = {}
    events: dict[str, dict[int, set[bytes]]] = {}
    pcrs: dict[str, set[int]] = {}
    for grouped, into in ((by_value, values), (by_event, events)):
        for (bank, pcr), digests in grouped.items():
            pcrs.setdefault(bank, set()).add(pcr)
            into.setdefault(bank, {})[pcr] = digests
    index = WhitelistIndex(
        component=component(wl),
        banks={
            bank: _BankIndex(
                frozenset(found),
                tuple((p, frozenset(d)) for p, d in sorted(values.get(bank, {}).items())),
                tuple((p, frozenset(d)) for p, d in sorted(events.get(bank, {}).items())),
            )
            for bank, found in pcrs.items()
        },
    )
    global _indexed_entries
    if len(_INDEXES) >= _INDEX_MAX or _indexed_entries + len(wl.entries) > _INDEX_MAX_ENTRIES:
        _INDEXES.clear()
        _indexed_entries = 0
    _INDEXES[id(wl)] = (wl, index)
    _indexed_entries += len(wl.entries)
    return index


def _pcr_value_checks(
    wl: Whitelist, index: WhitelistIndex, bank: str, quote: VerifiedQuote
) -> list[Check]:
    comp = index.component
    checks: list[Check] = []
    for pcr, allowed in index.bank(bank).pcr_values:
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
            key = ("pcr", wl.name, wl.version, bank, pcr, actual)
            check = _PASSING.get(key)
            if check is None:
                check = remember(
                    _PASSING,
                    key,
                    passed(
                        "whitelist.pcr",
                        comp,
                        f"PCR {pcr} ({bank}) matches whitelist '{wl.name}' v{wl.version}",
                        pcr=pcr,
                        bank=bank,
                        actual=actual.hex(),
                    ),
                )
            checks.append(check)
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


def _event_checks(
    wl: Whitelist, index: WhitelistIndex, bank: str, log: LogAppraisal | None
) -> list[Check]:
    comp = index.component
    checks: list[Check] = []
    for pcr, allowed in index.bank(bank).event_digests:
        digests = log.trusted_digests(bank, pcr) if log is not None else None
        if digests is not None and b"" not in digests and allowed.issuperset(digests):
            # 3. Every event is known (the common case, decided on the digests alone).
            key = ("event", wl.name, bank, pcr, len(digests))
            check = _PASSING.get(key)
            if check is None:
                check = remember(
                    _PASSING,
                    key,
                    passed(
                        "whitelist.event",
                        comp,
                        f"PCR {pcr} ({bank}): all {len(digests)} events are in whitelist "
                        f"'{wl.name}'",
                        pcr=pcr,
                        bank=bank,
                    ),
                )
            checks.append(check)
            continue
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
    index = whitelist_index(wl)
    for bank in banks:
        # 1. No accept-all: the whitelist must say something about this bank.
        if not index.bank(bank).pcrs:
            checks.append(
                failed(
                    "whitelist.bank",
                    index.component,
                    f"whitelist '{wl.name}' v{wl.version} has no {bank} entries",
                    bank=bank,
                )
            )
            continue
        checks.extend(_pcr_value_checks(wl, index, bank, quote))  # 2.
        checks.extend(_event_checks(wl, index, bank, log))  # 3.
    return checks


def required_pcrs(whitelists: Sequence[Whitelist], bank: str) -> set[int]:
    """PCR indices of ``bank`` that the whitelists constrain (PCR and event entries)."""
    out: set[int] = set()
    for wl in whitelists:
        out |= whitelist_index(wl).bank(bank).pcrs
    return out
