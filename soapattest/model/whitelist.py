"""Whitelists of golden measurements. Every change makes a new immutable version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EntryKind(StrEnum):
    """What a whitelist entry matches."""

    PCR = "pcr"  # a PCR's final value (one of the listed values must match)
    EVENT = "event"  # an event digest allowed in that PCR of the event log
    IMA = "ima"  # a file hash allowed for a path in the IMA list (pcr 10)


@dataclass(frozen=True, slots=True, order=True)
class WhitelistEntry:
    """One golden measurement.

    For ``PCR`` and ``EVENT`` entries ``bank`` and ``pcr`` say where the
    ``digest`` applies; ``label`` is free text (for events: the event type and
    description as seen on the reference host; never used for matching).
    For ``IMA`` entries ``path`` is the file path and ``bank`` the file hash
    algorithm; ``pcr`` is 10.
    """

    kind: EntryKind
    bank: str
    pcr: int
    digest: bytes
    path: str = ""
    label: str = ""

    def key(self) -> tuple[str, str, int, bytes, str]:
        """Identity of the entry (the label is not part of it)."""
        return (self.kind.value, self.bank, self.pcr, self.digest, self.path)


@dataclass(frozen=True, slots=True)
class Whitelist:
    """One version of a named whitelist."""

    name: str
    version: int
    entries: tuple[WhitelistEntry, ...]
    description: str = ""
    created_at: datetime | None = None
    created_by: str = ""
    source_host: str = ""  # set when imported from a known-good host

    def banks(self) -> set[str]:
        """Banks the PCR and event entries use."""
        return {e.bank for e in self.entries if e.kind is not EntryKind.IMA}

    def pcr_values(self, bank: str) -> dict[int, set[bytes]]:
        """PCR index -> allowed final values, for one bank."""
        out: dict[int, set[bytes]] = {}
        for e in self.entries:
            if e.kind is EntryKind.PCR and e.bank == bank:
                out.setdefault(e.pcr, set()).add(e.digest)
        return out

    def event_digests(self, bank: str) -> dict[int, set[bytes]]:
        """PCR index -> allowed event digests, for one bank."""
        out: dict[int, set[bytes]] = {}
        for e in self.entries:
            if e.kind is EntryKind.EVENT and e.bank == bank:
                out.setdefault(e.pcr, set()).add(e.digest)
        return out

    def ima_hashes(self) -> dict[str, set[tuple[str, bytes]]]:
        """Path -> allowed (hash algorithm, file hash) pairs."""
        out: dict[str, set[tuple[str, bytes]]] = {}
        for e in self.entries:
            if e.kind is EntryKind.IMA:
                out.setdefault(e.path, set()).add((e.bank, e.digest))
        return out

    def pcrs(self, bank: str) -> set[int]:
        """Every PCR index this whitelist constrains in ``bank``."""
        return {e.pcr for e in self.entries if e.kind is not EntryKind.IMA and e.bank == bank}
