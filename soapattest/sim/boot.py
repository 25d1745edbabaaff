"""Simulated boot: what to extend into a swtpm so that it looks like the logged machine.

Pure planning (:func:`plan_boot`, :func:`plan_ima`) plus one function that
plays a plan into a TPM through :class:`~soapattest.agent.tpm.TpmAccess`
(:func:`play`). A plan follows what firmware does (TCG PC Client PFP,
section 10.4.5 and 3.3.4.x):

1. TPM2_Startup(CLEAR) at the log's StartupLocality (0 or 3: PCR 0 then
   starts at 0...00 or 0...03);
2. for every event except EV_NO_ACTION, in log order, one TPM2_PCR_Extend of
   the event's PCR with the event's digest in every bank of the log.

The swtpm's active banks are the log's banks, so a quote plus the served log
replay exactly like the real machine.

Tampering (negative tests and demos) changes one event, the *target*: the
first EV_EFI_BOOT_SERVICES_APPLICATION of PCR 4 (the first boot loader), or
the first event extending PCR 4 when there is none. Its digests become
``H_bank("soapattest-tamper:" || original)``.

- ``"event"``: the PCRs are extended with the tampered digests and the served
  log carries them too: the log replays to the quote, but the event no longer
  matches a golden whitelist (a different boot loader ran).
- ``"pcr"``: the PCRs are extended with the tampered digests but the original
  log is served: the log no longer replays to the quoted PCR 4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from soapattest.errors import ImaLogError, SimulationError, UnsupportedSimLogError
from soapattest.tpm.constants import HASH_BY_NAME
from soapattest.tpm.eventlog import FORMAT_TCG12_SHA1, EventLog, UntrustedEvent
from soapattest.tpm.ima import parse_ima

if TYPE_CHECKING:
    from soapattest.agent.tpm import TpmAccess

TAMPER_MODES = ("event", "pcr")
EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003
TAMPER_PCR = 4
TAMPER_LABEL = b"soapattest-tamper:"
_HEADER_MAX = 12 + 5 * (2 + 64)  # crypto-agile event header: pcr, type, count, digests


@dataclass(frozen=True, slots=True)
class BootPlan:
    """What to play into a fresh swtpm, and the log the agent then serves.

    ``extends`` is ``(pcr, {bank: digest})`` in log order; ``tampered_event``
    the index of the changed event (``None`` when not tampered).
    """

    banks: tuple[str, ...]
    startup_locality: int
    extends: tuple[tuple[int, Mapping[str, bytes]], ...]
    served_log: bytes
    tamper: str | None
    tampered_event: int | None


def tamper_digest(bank: str, original: bytes) -> bytes:
    """The digest that replaces ``original`` in a tampered boot."""
    return HASH_BY_NAME[bank].digest(TAMPER_LABEL + original)


def tamper_target(log: EventLog) -> UntrustedEvent | None:
    """The event tampering changes (see the module docstring), ``None`` if PCR 4 has none."""
    first_pcr4 = None
    for e in log.events:
        if e.pcr != TAMPER_PCR or not e.extends:
            continue
        if e.untrusted_type == EV_EFI_BOOT_SERVICES_APPLICATION:
            return e
        if first_pcr4 is None:
            first_pcr4 = e
    return first_pcr4


def _patch_log(raw: bytes, log: EventLog, event: UntrustedEvent,
               new: Mapping[str, bytes]) -> bytes:
    """``raw`` with ``event``'s digests replaced by ``new`` (same sizes, same offsets)."""
    out = bytearray(raw)
    start = event.offset
    end = min(len(raw), start + (28 if log.format == FORMAT_TCG12_SHA1 else _HEADER_MAX))
    for bank, old in event.digests.items():
        at = raw.find(old, start, end)
        if at < 0:
            raise SimulationError(f"cannot locate the {bank} digest of event {event.index}")
        out[at : at + len(old)] = new[bank]
    return bytes(out)


def plan_boot(name: str, raw: bytes, log: EventLog, tamper: str | None = None) -> BootPlan:
    """The boot plan of a parsed, simulatable log (see :func:`~soapattest.sim.catalog.load_log`).

    ``tamper``: ``None``, ``"event"`` or ``"pcr"``. Raises ``ValueError`` for
    an unknown mode and :class:`UnsupportedSimLogError` when the log has no
    PCR 4 event to tamper with.
    """
    if tamper not in (None, *TAMPER_MODES):
        raise ValueError(f"tamper mode {tamper!r} is not one of {TAMPER_MODES}")
    target = tamper_target(log) if tamper else None
    if tamper and target is None:
        raise UnsupportedSimLogError(f"{name} has no PCR {TAMPER_PCR} event to tamper with",
                                     log=name, reason="nothing to tamper")
    extends: list[tuple[int, Mapping[str, bytes]]] = []
    served = raw
    for e in log.events:
        if not e.extends:
            continue
        digests: Mapping[str, bytes] = {b: e.digests[b] for b in log.banks}
        if target is not None and e.index == target.index:
            digests = {b: tamper_digest(b, d) for b, d in digests.items()}
            if tamper == "event":
                served = _patch_log(raw, log, e, digests)
        extends.append((e.pcr, digests))
    return BootPlan(
        banks=tuple(log.banks),
        startup_locality=log.startup_locality or 0,
        extends=tuple(extends),
        served_log=served,
        tamper=tamper,
        tampered_event=target.index if target is not None else None,
    )


def plan_ima(
    raw: bytes, banks: Sequence[str]
) -> tuple[str, tuple[tuple[int, Mapping[str, bytes]], ...]]:
    """The PCR extends a kernel made for an IMA list, in every bank of ``banks``.

    Returns ``(template digest algorithm of the list, extends)``.

    Per entry (Linux ``ima_pcr_extend``): a violation (all-zero template
    digest) extends all-0xFF; otherwise the recorded template digest in its
    own bank, and ``H_bank(template_data)`` in the other banks. Raises
    :class:`UnsupportedSimLogError` when the list does not parse.
    """
    try:
        ima = parse_ima(raw)
    except ImaLogError as exc:
        raise UnsupportedSimLogError(f"IMA list does not parse: {exc.message}", log="ima",
                                     reason=exc.message) from exc
    out: list[tuple[int, Mapping[str, bytes]]] = []
    for entry in ima.entries:
        digests: dict[str, bytes] = {}
        for bank in banks:
            alg = HASH_BY_NAME[bank]
            if entry.is_violation:
                digests[bank] = b"\xff" * alg.digest_size
            elif entry.template_hash_alg == bank:
                digests[bank] = entry.template_digest
            else:
                digests[bank] = alg.digest(entry.template_data)
        out.append((entry.pcr, digests))
    return ima.template_hash_alg, tuple(out)


def play(tpm: TpmAccess, plan: BootPlan,
         ima: Iterable[tuple[int, Mapping[str, bytes]]] = ()) -> None:
    """Extend every planned digest, then IMA's (after TPM2_Startup at the plan's locality)."""
    for pcr, digests in plan.extends:
        tpm.pcr_extend(pcr, digests)
    for pcr, digests in ima:
        tpm.pcr_extend(pcr, digests)
