"""The real event logs (and IMA list) bundled with the simulator, and what can be simulated.

``soapattest/sim/data`` holds a few real measured-boot logs copied from the
project's test data; ``MANIFEST.tsv`` there gives each file's provenance
(repository, path, commit, sha256). A log is named by its file stem
(``gotpmtools_rhel8-uefi``); any other log can be given by path.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from soapattest.errors import EventLogError, UnsupportedSimLogError
from soapattest.tpm.eventlog import EventLog, parse_event_log

DATA_DIR = Path(__file__).resolve().parent / "data"
MANIFEST = DATA_DIR / "MANIFEST.tsv"

# Banks libtpms (swtpm) can allocate.
SWTPM_BANKS = ("sha1", "sha256", "sha384", "sha512")
# PCRs a PC Client TPM only lets locality 3/4 (DRTM) reset and extend.
DRTM_PCRS = frozenset(range(17, 23))
# Which bundled IMA list belongs to which bundled firmware log (same machine).
IMA_FOR_LOG = {
    "imaverify_vm_binary_bios_measurements": "imaverify_vm_binary_runtime_measurements_sha256",
}
DEFAULT_LOG = "gotpmtools_rhel8-uefi"


@dataclass(frozen=True, slots=True)
class BundledFile:
    """One bundled file: name (file stem), kind (``eventlog``/``ima``), path, provenance."""

    name: str
    kind: str
    path: Path
    description: str
    source: str


def bundled_files() -> tuple[BundledFile, ...]:
    """Every file listed in ``MANIFEST.tsv``, in file name order."""
    out = []
    with MANIFEST.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            path = DATA_DIR / row["filename"]
            out.append(BundledFile(
                name=path.stem,
                kind=row["kind"],
                path=path,
                description=row["description"],
                source=f"{row['source_repo']}@{row['commit'][:12]}:{row['path_in_repo']}",
            ))
    return tuple(sorted(out, key=lambda b: b.name))


def bundled_logs() -> tuple[BundledFile, ...]:
    """The bundled measured-boot event logs."""
    return tuple(b for b in bundled_files() if b.kind == "eventlog")


def resolve(name_or_path: str | Path, kind: str = "eventlog") -> tuple[str, Path]:
    """``(name, path)`` of a bundled file name (stem) or of an existing file path.

    Raises :class:`UnsupportedSimLogError` when it is neither.
    """
    for b in bundled_files():
        if b.kind == kind and str(name_or_path) in (b.name, b.path.name):
            return b.name, b.path
    path = Path(name_or_path)
    if path.is_file():
        return path.stem, path
    known = ", ".join(b.name for b in bundled_files() if b.kind == kind)
    raise UnsupportedSimLogError(
        f"{name_or_path!s} is neither a bundled {kind} ({known}) nor a file",
        log=str(name_or_path), reason="not found",
    )


def unsupported_reason(log: EventLog) -> str | None:
    """Why ``log`` cannot be replayed into a swtpm, or ``None`` when it can.

    A swtpm reproduces PCR 0's initial value for StartupLocality 0 or 3 (TPM2_Startup
    issued at that locality), but not an H-CRTM sequence (its first PCR 0
    measurement is hashed by the TPM itself, so an arbitrary logged digest cannot
    be reproduced), nor DRTM PCRs 17-22, nor banks libtpms does not implement.
    """
    if log.hcrtm:
        return "H-CRTM log: PCR 0 starts with a TPM-computed measurement a swtpm cannot replay"
    if log.startup_locality not in (None, 0, 3):
        return f"StartupLocality {log.startup_locality} (only 0 and 3 can be simulated)"
    unknown = [b for b in log.banks if b not in SWTPM_BANKS]
    if unknown:
        return f"bank(s) {', '.join(unknown)} not implemented by swtpm"
    drtm = sorted({e.pcr for e in log.events if e.extends and e.pcr in DRTM_PCRS})
    if drtm:
        return f"DRTM PCR(s) {drtm} need locality 4 to reset and extend"
    if not any(e.extends for e in log.events):
        return "the log extends no PCR"
    return None


def load_log(name_or_path: str | Path) -> tuple[str, bytes, EventLog]:
    """Resolve, read and parse a log; ``(name, raw bytes, parsed log)``.

    Raises :class:`UnsupportedSimLogError` when the log is missing, does not
    parse, or cannot be simulated (see :func:`unsupported_reason`).
    """
    name, path = resolve(name_or_path)
    raw = path.read_bytes()
    try:
        log = parse_event_log(raw)
    except EventLogError as exc:
        raise UnsupportedSimLogError(
            f"{name}: does not parse: {exc.message}", log=name, reason=exc.message
        ) from exc
    reason = unsupported_reason(log)
    if reason is not None:
        raise UnsupportedSimLogError(f"{name} cannot be simulated: {reason}", log=name,
                                     reason=reason)
    return name, raw, log
