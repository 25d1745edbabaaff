"""Replay of a parsed event log: the PCR values the logged digests produce.

Rules (TCG PC Client Platform Firmware Profile rev 1.05/1.06; TPM 2.0 Part 1):

1. Every PCR starts at its TPM2_Startup(CLEAR) value: all zeros for PCR 0-16
   and 23; all ``0xFF`` for the DRTM PCRs 17-22 (PC Client PTP: they are reset
   to ``0xFF..`` at startup and to zero only by a DRTM launch, which an SRTM
   firmware log does not record).
2. PCR0 starts at ``00..00LL`` where LL is the StartupLocality value when a
   "StartupLocality" EV_NO_ACTION event is logged (PFP 10.4.5.3), and at
   ``00..0004`` when an H-CRTM start is logged (EV_EFI_HCRTM_EVENT in PCR0,
   or StartupLocality 4): ``_TPM_Hash_Start`` before TPM2_Startup resets PCR0
   to the locality-4 value and the startup locality is then ignored (TPM 2.0
   Part 1 section 34.3; reference code TPM2_Startup).
3. Each event extends its PCR in every bank: ``PCR := H(PCR || digest)``,
   with the digest exactly as logged. EV_NO_ACTION events are never extended,
   whatever digests they carry (PFP 10.4.5).

A replay proves nothing by itself: only a match with a verified quote makes
the events of that PCR trustworthy, and only as a sequence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from soapattest.errors import EventLogBankError
from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.eventlog.model import EventLog, UntrustedEvent

DRTM_PCRS = range(17, 23)
HCRTM_LOCALITY = 4

_FAST_HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def initial_pcr_value(log: EventLog, bank: str, pcr: int) -> bytes:
    """The value ``pcr`` of ``bank`` has before the first event of ``log`` (rules 1-2)."""
    size = _digest_size(bank)
    if pcr == 0:
        if log.hcrtm:
            return bytes(size - 1) + bytes([HCRTM_LOCALITY])
        if log.startup_locality is not None:
            return bytes(size - 1) + bytes([log.startup_locality])
    if pcr in DRTM_PCRS:
        return b"\xff" * size
    return bytes(size)


def replay(log: EventLog, *, banks: Iterable[str] | None = None) -> dict[str, dict[int, bytes]]:
    """Replay ``log`` in ``banks`` (default: every bank of the log).

    Returns bank -> PCR index -> final value, for every PCR the log extends,
    plus PCR0 when a StartupLocality / H-CRTM event sets its initial value
    (even if nothing extends it: the TPM's PCR0 then still differs from zero).
    Raises :class:`~soapattest.errors.EventLogBankError` for a bank the log
    does not carry.
    """
    selected = _select_banks(log, banks)
    chains = log.compact.chains
    pcrs = sorted(chains.keys() | ({0} if log.hcrtm or log.startup_locality is not None else set()))
    empty: list[tuple[bytes, ...]] = []
    result: dict[str, dict[int, bytes]] = {}
    for position, bank in selected:
        new = _FAST_HASHES.get(bank) or _hash_of(bank)
        zero = bytes(_digest_size(bank))
        column = itemgetter(position)
        values: dict[int, bytes] = {}
        for pcr in pcrs:
            # Rule 1 inline for the common PCRs; PCR 0 and the DRTM PCRs by the rules.
            value = initial_pcr_value(log, bank, pcr) if pcr == 0 or pcr in DRTM_PCRS else zero
            for digest in map(column, chains.get(pcr, empty)):
                value = new(value + digest).digest()
            values[pcr] = value
        result[bank] = values
    return result


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """One extend of a PCR during replay: the event and the PCR value after it."""

    event: UntrustedEvent
    value: bytes


def replay_steps(log: EventLog, bank: str, pcr: int) -> tuple[bytes, tuple[ReplayStep, ...]]:
    """The initial value of ``pcr`` and each extend of it, in log order.

    Lets a verifier show the events involved in a PCR and the value after each.
    Raises :class:`~soapattest.errors.EventLogBankError` for an unknown bank.
    """
    _select_banks(log, [bank])
    new = _FAST_HASHES.get(bank) or _hash_of(bank)
    start = value = initial_pcr_value(log, bank, pcr)
    steps: list[ReplayStep] = []
    for event in events_for_pcr(log, pcr):
        value = new(value + event.digests[bank]).digest()
        steps.append(ReplayStep(event, value))
    return start, tuple(steps)


def events_for_pcr(
    log: EventLog, pcr: int, *, include_no_action: bool = False
) -> tuple[UntrustedEvent, ...]:
    """The events of ``log`` logged to ``pcr`` that replay extends, in log order.

    With ``include_no_action`` the EV_NO_ACTION events of that PCR (e.g. the
    StartupLocality event of PCR0) are included too.
    """
    return tuple(e for e in log.events if e.pcr == pcr and (include_no_action or e.extends))


def _select_banks(log: EventLog, banks: Iterable[str] | None) -> list[tuple[int, str]]:
    columns = log.compact.columns
    if banks is None:
        return [(columns.index(bank), bank) for bank in log.banks]
    selected: list[tuple[int, str]] = []
    for bank in banks:
        if bank not in log.banks:
            raise EventLogBankError(
                f"the event log has no complete {bank} bank (it has {', '.join(log.banks)})",
                bank=bank,
            )
        entry = (columns.index(bank), bank)
        if entry not in selected:
            selected.append(entry)
    return selected


def _digest_size(bank: str) -> int:
    algorithm = hash_by_name(bank)
    if algorithm is None:
        raise EventLogBankError(f"{bank} is not a PCR bank soapattest knows", bank=bank)
    return algorithm.digest_size


def _hash_of(bank: str) -> Callable[[bytes], Any]:
    algorithm = hash_by_name(bank)
    if algorithm is None:
        raise EventLogBankError(f"{bank} is not a PCR bank soapattest knows", bank=bank)
    return algorithm.new
