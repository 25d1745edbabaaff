"""Inputs of the client commands: labels, PCR lists, NAME@VERSION, times, entry files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from soapattest.cli import inputs
from soapattest.cli.render import entry_json
from soapattest.errors import InvalidArgumentError
from soapattest.model import EntryKind, WhitelistEntry

DIGEST = "ab" * 32


def test_labels() -> None:
    assert inputs.labels(["rack=r1", "zone=a=b"]) == {"rack": "r1", "zone": "a=b"}
    assert inputs.labels([]) == {}


@pytest.mark.parametrize("bad", [["rack"], ["=x"], ["a=1", "a=2"]])
def test_bad_labels(bad: list[str]) -> None:
    with pytest.raises(InvalidArgumentError):
        inputs.labels(bad)


def test_pcr_list() -> None:
    assert inputs.pcr_list(["0-3,7", "7", "14"]) == [0, 1, 2, 3, 7, 14]


@pytest.mark.parametrize("bad", [["24"], ["3-1"], ["x"], [""], ["0-24"]])
def test_bad_pcr_list(bad: list[str]) -> None:
    with pytest.raises(InvalidArgumentError):
        inputs.pcr_list(bad)


def test_name_version() -> None:
    assert inputs.name_version("rhel8@3") == ("rhel8", 3)
    assert inputs.name_version("rhel8") == ("rhel8", None)
    assert inputs.name_version("rhel8@latest") == ("rhel8", None)


@pytest.mark.parametrize("bad", ["@3", "rhel8@0", "rhel8@x"])
def test_bad_name_version(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        inputs.name_version(bad)


def test_timestamp() -> None:
    assert inputs.timestamp("2024-05-01T10:00:00Z", "--since") == datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )
    assert inputs.timestamp("2024-05-01", "--since") == datetime(2024, 5, 1, tzinfo=UTC)
    assert inputs.timestamp(None, "--since") is None
    with pytest.raises(InvalidArgumentError):
        inputs.timestamp("yesterday", "--since")


def test_entries_from_json_list(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text(
        json.dumps(
            [
                {"kind": "pcr", "bank": "sha256", "pcr": 0, "digest": DIGEST, "label": "fw"},
                {"kind": "ima", "bank": "sha256", "digest": DIGEST, "path": "/bin/sh"},
            ]
        )
    )
    assert inputs.read_entries(path) == [
        WhitelistEntry(EntryKind.PCR, "sha256", 0, bytes.fromhex(DIGEST), label="fw"),
        WhitelistEntry(EntryKind.IMA, "sha256", 10, bytes.fromhex(DIGEST), path="/bin/sh"),
    ]


def test_entries_from_show_output_round_trip(tmp_path: Path) -> None:
    entries = [WhitelistEntry(EntryKind.EVENT, "sha1", 4, b"\x01" * 20, label="EV_X")]
    path = tmp_path / "show.json"
    path.write_text(
        json.dumps({"name": "w", "version": 1, "entries": [entry_json(e) for e in entries]})
    )
    assert inputs.read_entries(path) == entries


def test_entries_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        f"kind,bank,pcr,digest,label\npcr,sha256,7,{DIGEST},sb\n\nevent,sha256,4,0x{DIGEST},\n"
    )
    assert inputs.read_entries(path) == [
        WhitelistEntry(EntryKind.PCR, "sha256", 7, bytes.fromhex(DIGEST), label="sb"),
        WhitelistEntry(EntryKind.EVENT, "sha256", 4, bytes.fromhex(DIGEST)),
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("a.json", "[]"),
        ("b.json", '{"entries": 3}'),
        ("c.json", '[{"kind": "pcr", "bank": "sha256", "pcr": 0, "digest": "zz"}]'),
        ("d.json", '[{"kind": "bad", "bank": "sha256", "pcr": 0, "digest": "00"}]'),
        ("e.json", '[{"kind": "pcr", "bank": "sha256", "pcr": 24, "digest": "00"}]'),
        ("f.json", '[{"kind": "pcr", "bank": "sha256", "pcr": 1, "digest": "00", "extra": 1}]'),
        ("g.json", '[{"kind": "pcr", "bank": "sha256", "pcr": 1}]'),
        ("h.json", "[not json"),
        ("i.csv", "kind,bank,digest\npcr,sha256,00\n"),
        ("j.csv", "kind,bank,pcr,digest\npcr,sha256,1,00,extra\n"),
    ],
)
def test_bad_entry_files(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidArgumentError):
        inputs.read_entries(path)


def test_missing_entry_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        inputs.read_entries(tmp_path / "absent.json")
