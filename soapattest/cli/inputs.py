"""Parsing of the client commands' inputs: labels, PCR lists, name@version, times and
whitelist entry files (JSON or CSV). Every refusal is an InvalidArgumentError that
names the input (the command exits with status 2)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soapattest.errors import InvalidArgumentError
from soapattest.model import EntryKind, WhitelistEntry

MAX_ENTRY_FILE = 64 * 1024 * 1024
CSV_COLUMNS = ("kind", "bank", "pcr", "digest", "path", "label")


def labels(items: Iterable[str], option: str = "--label") -> dict[str, str]:
    """``["rack=r1", "zone=a"]`` -> ``{"rack": "r1", "zone": "a"}`` (no key twice)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(
                f"{option}: expected KEY=VALUE, got {item!r}", argument=option
            )
        if key in out:
            raise InvalidArgumentError(f"{option}: label {key!r} given twice", argument=option)
        out[key] = value
    return out


def pcr_list(items: Iterable[str], option: str = "--pcr") -> list[int]:
    """``["0-7", "10,14"]`` -> ``[0, 1, ..., 7, 10, 14]`` (0..23, sorted, no duplicates)."""
    out: set[int] = set()
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            low, sep, high = part.partition("-")
            try:
                first = int(low)
                last = int(high) if sep else first
            except ValueError:
                raise InvalidArgumentError(
                    f"{option}: {part!r} is not a PCR or range", argument=option
                ) from None
            if not 0 <= first <= last <= 23:
                raise InvalidArgumentError(f"{option}: {part!r} is outside 0..23", argument=option)
            out.update(range(first, last + 1))
    if not out:
        raise InvalidArgumentError(f"{option}: no PCR given", argument=option)
    return sorted(out)


def name_version(text: str, what: str = "name") -> tuple[str, int | None]:
    """``"rhel8@3"`` -> ``("rhel8", 3)``; ``"rhel8"`` -> ``("rhel8", None)``."""
    name, sep, version = text.partition("@")
    if not name:
        raise InvalidArgumentError(f"{what}: empty name in {text!r}", argument=what)
    if not sep or version in ("", "latest"):
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidArgumentError(
            f"{what}: version {version!r} is not a positive number", argument=what
        )
    return name, int(version)


def timestamp(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 time (``2024-05-01``, ``2024-05-01T10:00:00Z``); naive means UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgumentError(
            f"{option}: {text!r} is not an ISO 8601 time", argument=option
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def hex_bytes(text: str, where: str) -> bytes:
    """Strict hex (whitespace and a ``0x`` prefix tolerated) -> bytes."""
    cleaned = "".join(str(text).split()).lower().removeprefix("0x")
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        raise InvalidArgumentError(f"{where}: digest is not hex", argument="digest") from None
    if not value:
        raise InvalidArgumentError(f"{where}: empty digest", argument="digest")
    return value


def _entry(raw: Any, where: str) -> WhitelistEntry:
    if not isinstance(raw, dict):
        raise InvalidArgumentError(f"{where}: an entry must be an object", argument="entries")
    unknown = set(raw) - set(CSV_COLUMNS)
    if unknown:
        raise InvalidArgumentError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}", argument="entries"
        )
    try:
        kind = EntryKind(str(raw.get("kind", "")).strip().lower())
    except ValueError:
        raise InvalidArgumentError(
            f"{where}: kind must be pcr, event or ima", argument="entries"
        ) from None
    bank = str(raw.get("bank") or "").strip()
    if not bank:
        raise InvalidArgumentError(f"{where}: bank is missing", argument="entries")
    pcr_raw = raw.get("pcr")
    if pcr_raw in (None, "") and kind is EntryKind.IMA:
        pcr_raw = 10
    try:
        pcr = int(str(pcr_raw).strip())
    except ValueError:
        raise InvalidArgumentError(f"{where}: pcr is not a number", argument="entries") from None
    if not 0 <= pcr <= 23:
        raise InvalidArgumentError(f"{where}: pcr must be within 0..23", argument="entries")
    if "digest" not in raw or raw["digest"] in (None, ""):
        raise InvalidArgumentError(f"{where}: digest is missing", argument="entries")
    return WhitelistEntry(
        kind=kind,
        bank=bank,
        pcr=pcr,
        digest=hex_bytes(str(raw["digest"]), where),
        path=str(raw.get("path") or ""),
        label=str(raw.get("label") or ""),
    )


def read_entries(path: Path) -> list[WhitelistEntry]:
    """Whitelist entries from a JSON or CSV file.

    JSON: a list of entries, or an object with ``"entries"`` (what
    ``soapattest whitelist show --json`` prints). CSV: a header row naming
    ``kind,bank,pcr,digest`` and optionally ``path,label``. Each entry has
    ``kind`` (pcr, event, ima), ``bank``, ``pcr`` (0..23; 10 by default for
    ima), ``digest`` (hex), optional ``path`` and ``label``. The format is
    chosen by the suffix (``.csv``), else by the first character (``[``/``{``).
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidArgumentError(
            f"cannot read {path}: {exc.strerror or exc}", argument="file"
        ) from None
    if size > MAX_ENTRY_FILE:
        raise InvalidArgumentError(f"{path}: larger than {MAX_ENTRY_FILE} bytes", argument="file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc}", argument="file") from None
    stripped = text.lstrip()
    if path.suffix.lower() != ".csv" and stripped[:1] in ("[", "{"):
        entries = _json_entries(stripped, path)
    else:
        entries = _csv_entries(text, path)
    if not entries:
        raise InvalidArgumentError(f"{path}: no entries", argument="file")
    return entries


def _json_entries(text: str, path: Path) -> list[WhitelistEntry]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"{path}: not valid JSON ({exc})", argument="file") from None
    items = doc.get("entries") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise InvalidArgumentError(
            f'{path}: expected a list of entries or {{"entries": [...]}}', argument="file"
        )
    return [_entry(item, f"{path.name}: entry {i}") for i, item in enumerate(items)]


def _csv_entries(text: str, path: Path) -> list[WhitelistEntry]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_COLUMNS[:4] if c not in header]
    if missing:
        raise InvalidArgumentError(
            f"{path}: the CSV header must name {', '.join(CSV_COLUMNS[:4])} "
            f"(missing: {', '.join(missing)})",
            argument="file",
        )
    reader.fieldnames = header
    out = []
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        if None in row:
            raise InvalidArgumentError(
                f"{path.name}: line {line}: more fields than the header", argument="file"
            )
        out.append(
            _entry(
                {k: v for k, v in row.items() if v not in (None, "")}, f"{path.name}: line {line}"
            )
        )
    return out
