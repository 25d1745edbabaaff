"""Domain values of a parsed measured-boot event log (frozen, immutable)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

from soapattest.errors import EventLogDigestCountError
from soapattest.tpm.eventlog.eventtypes import EV_NO_ACTION, event_type_name

FORMAT_CRYPTO_AGILE = "crypto_agile"
FORMAT_TCG12_SHA1 = "tcg1.2_sha1"


@dataclass(frozen=True, slots=True)
class EventLogLimits:
    """Bounds applied while parsing an untrusted log (checked before any allocation).

    Defaults, and why they are generous but finite:

    - ``max_log_bytes`` 16 MiB: the TCG2 ACPI table's log area (LAML) is 64 KiB-1 MiB
      on real machines; logs with large ``db``/``dbx`` measurements and many option
      ROMs stay well under 1 MiB.
    - ``max_events`` 65,536: busy real logs (grub measuring every command) have a
      few thousand events.
    - ``max_event_data_bytes`` 1 MiB: the largest real events are ``dbx``/``db``
      EV_EFI_VARIABLE_DRIVER_CONFIG measurements (tens of KiB).
    """

    max_log_bytes: int = 16 * 1024 * 1024
    max_events: int = 65_536
    max_event_data_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("max_log_bytes", "max_events", "max_event_data_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"EventLogLimits.{name} must be at least 1")


DEFAULT_LIMITS = EventLogLimits()


@dataclass(frozen=True, slots=True)
class SpecIdAlgorithm:
    """One TCG_EfiSpecIdEventAlgorithmSize entry: algorithm id, digest size, bank name.

    ``name`` is ``None`` for an algorithm soapattest does not implement: its
    digests are parsed (the SpecID gives their size) but not exposed or replayed.
    """

    alg: int
    digest_size: int
    name: str | None


@dataclass(frozen=True, slots=True)
class SpecIdEvent:
    """TCG_EfiSpecIDEvent ("Spec ID Event03", PFP 1.05 section 10.4.5.1)."""

    platform_class: int
    spec_version_minor: int
    spec_version_major: int
    spec_errata: int
    uintn_size: int  # 1: UINTN is 32 bits, 2: 64 bits
    algorithms: tuple[SpecIdAlgorithm, ...]
    vendor_info: bytes


@dataclass(frozen=True, slots=True)
class UntrustedEvent:
    """One event exactly as logged. Nothing here is verified.

    ``untrusted_type`` and ``data`` are not covered by the digests; the digests
    are only as good as a replay that matches a verified quote.
    ``offset`` is the byte offset of the event in the log, ``index`` its
    0-based position (the SpecID / first event is index 0).
    """

    index: int
    offset: int
    pcr: int
    untrusted_type: int
    digests: Mapping[str, bytes] = field(hash=False)
    data: bytes

    @property
    def type_name(self) -> str:
        """``"EV_SEPARATOR"`` etc., or ``"0x%08x"`` for an unknown type."""
        return event_type_name(self.untrusted_type)

    @property
    def extends(self) -> bool:
        """Whether replay extends this event: every type but EV_NO_ACTION (PFP 10.4.5)."""
        return self.untrusted_type != EV_NO_ACTION


# offset, pcr, event type, digests in ``columns`` order (b"" = not logged), data
Record = tuple[int, int, int, tuple[bytes, ...], bytes]
EventRow = tuple[int, int, int, tuple[bytes, ...], bytes]
"""One event without an :class:`UntrustedEvent`: index, PCR, type, digests in
``EventLog.columns`` order (``b""`` = not logged), data. Untrusted, like the event."""


class CompactEvents:
    """Events of one log: ``head`` (built eagerly) then ``records`` (built on first use).

    Parsing builds one plain tuple per event; :class:`UntrustedEvent` objects are
    built the first time ``EventLog.events`` is read. Replay works on ``chains``
    so ``parse_event_log`` + ``replay`` never pays for objects it does not need.

    ``columns`` names the digest positions of records and chains (every bank
    of the SpecID soapattest implements); ``banks`` are the columns every
    extending event has a digest for (only those can be replayed).
    ``chains`` maps each extended PCR to the digests of its extending events,
    in log order.
    """

    __slots__ = ("_events", "banks", "chains", "columns", "head", "records")

    def __init__(
        self,
        columns: tuple[str, ...],
        banks: tuple[str, ...],
        head: tuple[UntrustedEvent, ...],
        records: list[Record],
        chains: dict[int, list[tuple[bytes, ...]]],
    ) -> None:
        self.columns = columns
        self.banks = banks
        self.head = head
        self.records = records
        self.chains = chains
        self._events: tuple[UntrustedEvent, ...] | None = None

    @classmethod
    def from_events(cls, banks: tuple[str, ...], events: Iterable[UntrustedEvent]) -> CompactEvents:
        """Wrap built events; raises EventLogDigestCountError when one misses a bank."""
        built = tuple(events)
        chains: dict[int, list[tuple[bytes, ...]]] = {}
        for ev in built:
            if not ev.extends:
                continue
            missing = [b for b in banks if b not in ev.digests]
            if missing:
                raise EventLogDigestCountError(
                    f"no {', '.join(missing)} digest", event_index=ev.index, offset=ev.offset
                )
            chains.setdefault(ev.pcr, []).append(tuple(ev.digests[b] for b in banks))
        compact = cls(banks, banks, built, [], chains)
        compact._events = built
        return compact

    def events(self) -> tuple[UntrustedEvent, ...]:
        """Every event in log order, built once and cached."""
        events = self._events
        if events is None:
            columns = self.columns
            first = len(self.head)
            event = UntrustedEvent
            built = [
                event(
                    first + i,
                    off,
                    pcr,
                    etype,
                    dict(zip(columns, digs, strict=True))
                    if b"" not in digs
                    else {c: d for c, d in zip(columns, digs, strict=True) if d},
                    data,
                )
                for i, (off, pcr, etype, digs, data) in enumerate(self.records)
            ]
            events = self.head + tuple(built)
            self._events = events
        return events

    def extending_events(self, pcr: int) -> tuple[UntrustedEvent, ...]:
        """The events that extend ``pcr``, in log order, building only those (equal to
        filtering :meth:`events`)."""
        if self._events is not None:
            return tuple(e for e in self._events if e.pcr == pcr and e.extends)
        columns = self.columns
        first = len(self.head)
        event = UntrustedEvent
        return tuple(e for e in self.head if e.pcr == pcr and e.extends) + tuple(
            event(
                first + i,
                off,
                epcr,
                etype,
                dict(zip(columns, digs, strict=True))
                if b"" not in digs
                else {c: d for c, d in zip(columns, digs, strict=True) if d},
                data,
            )
            for i, (off, epcr, etype, digs, data) in enumerate(self.records)
            if epcr == pcr and etype != EV_NO_ACTION
        )

    def __len__(self) -> int:
        return len(self.head) + len(self.records)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactEvents):
            return NotImplemented
        return self.banks == other.banks and self.events() == other.events()

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class EventLog:
    """A parsed firmware event log (build it with ``parse_event_log`` or ``from_events``).

    ``format`` is ``"crypto_agile"`` or ``"tcg1.2_sha1"``; ``banks`` the bank names
    of the log in SpecID order (``("sha1",)`` for a TCG 1.2 log); ``events`` (a
    property) every event in log order, including the header event and the
    EV_NO_ACTION events. ``startup_locality`` is the value of the PCR0
    "StartupLocality" EV_NO_ACTION event (``None`` when absent) and ``hcrtm``
    tells whether an H-CRTM start was logged (an EV_EFI_HCRTM_EVENT in PCR0, or
    StartupLocality 4).
    """

    format: str
    banks: tuple[str, ...]
    spec_id: SpecIdEvent | None
    startup_locality: int | None
    hcrtm: bool
    # Implementation detail (the parsed records and per-PCR digest chains): use
    # ``events`` and ``replay`` instead.
    compact: CompactEvents = field(repr=False, hash=False)

    @classmethod
    def from_events(
        cls,
        *,
        format: str,
        banks: tuple[str, ...],
        events: Iterable[UntrustedEvent],
        spec_id: SpecIdEvent | None = None,
        startup_locality: int | None = None,
        hcrtm: bool = False,
    ) -> EventLog:
        """A log from already built events (tests, synthetic logs).

        Raises :class:`~soapattest.errors.EventLogDigestCountError` when an
        extending event lacks a digest of one of ``banks``.
        """
        compact = CompactEvents.from_events(tuple(banks), events)
        return cls(format, tuple(banks), spec_id, startup_locality, hcrtm, compact)

    @property
    def events(self) -> tuple[UntrustedEvent, ...]:
        """Every event in log order (index 0 is the SpecID / first event)."""
        return self.compact.events()

    @property
    def event_count(self) -> int:
        """Number of events, without building them."""
        return len(self.compact)

    # Verifier hot path: the same facts as ``events`` without building them.

    @property
    def columns(self) -> tuple[str, ...]:
        """Bank of each position of :data:`EventRow` digests and :meth:`extend_digests`."""
        return self.compact.columns

    def extending_events(self, pcr: int) -> tuple[UntrustedEvent, ...]:
        """The events replay extends ``pcr`` with, in log order (builds only those)."""
        return self.compact.extending_events(pcr)

    def extended_pcrs(self) -> frozenset[int]:
        """PCRs that at least one event extends (every type but EV_NO_ACTION)."""
        return frozenset(self.compact.chains)

    def extend_count(self, pcr: int) -> int:
        """How many events extend ``pcr``."""
        return len(self.compact.chains.get(pcr, ()))

    def extend_digests(self, bank: str, pcr: int) -> tuple[bytes, ...]:
        """The ``bank`` digests replay extends ``pcr`` with, in log order (``b""``: not logged).

        Raises ``ValueError`` when ``bank`` is not a column of the log.
        """
        position = self.compact.columns.index(bank)
        return tuple(map(itemgetter(position), self.compact.chains.get(pcr, ())))

    def rows_of_types(self, types: frozenset[int]) -> dict[int, list[EventRow]]:
        """Extending events whose type is in ``types``, by PCR, in log order, as rows."""
        out: dict[int, list[EventRow]] = {}
        compact = self.compact
        columns = compact.columns
        for ev in compact.head:
            if ev.untrusted_type in types and ev.extends:
                digests = tuple(ev.digests.get(c, b"") for c in columns)
                row = (ev.index, ev.pcr, ev.untrusted_type, digests, ev.data)
                out.setdefault(ev.pcr, []).append(row)
        no_action = EV_NO_ACTION in types
        for index, (_off, pcr, etype, digests, data) in enumerate(
            compact.records, len(compact.head)
        ):
            if etype in types and not (no_action and etype == EV_NO_ACTION):
                rows = out.get(pcr)
                if rows is None:
                    out[pcr] = [(index, pcr, etype, digests, data)]
                else:
                    rows.append((index, pcr, etype, digests, data))
        return out

    def row_digest_key(self, row: EventRow) -> tuple[object, ...]:
        """A hashable value that determines :meth:`row_digests` of ``row`` (for memo keys)."""
        compact = self.compact
        if compact.records and row[0] >= len(compact.head):
            return (compact.columns, row[3])
        return (None, self.row_digests(row))

    def row_digests(self, row: EventRow) -> tuple[tuple[str, bytes], ...]:
        """The ``(bank, digest)`` pairs of the event of ``row``, as ``event.digests.items()``."""
        index = row[0]
        compact = self.compact
        if compact.records and index >= len(compact.head):  # parsed: records follow the head
            return tuple((c, d) for c, d in zip(compact.columns, row[3], strict=True) if d)
        for ev in compact.head:
            if ev.index == index:
                return tuple(ev.digests.items())
        raise ValueError(f"no event {index} in this log")

    @property
    def uintn_bytes(self) -> int:
        """Size in bytes of a UEFI UINTN on the logging platform (8 unless SpecID says 32-bit)."""
        if self.spec_id is not None and self.spec_id.uintn_size == 1:
            return 4
        return 8
