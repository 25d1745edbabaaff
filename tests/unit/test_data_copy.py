"""The bundled copy of the real measurement data matches its manifests."""

from __future__ import annotations

import csv
import hashlib

import pytest

from tests.conftest import _BUNDLED, _SHARED

MANIFESTS = ["eventlogs/MANIFEST.tsv", "ima/MANIFEST.tsv"]


def _rows(manifest: str) -> list[dict[str, str]]:
    with open(_BUNDLED / manifest, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_bundled_files_match_manifest_digests(manifest: str) -> None:
    rows = _rows(manifest)
    assert rows, "manifest lists no file"
    folder = (_BUNDLED / manifest).parent
    for row in rows:
        data = (folder / row["filename"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"], row["filename"]


@pytest.mark.skipif(not _SHARED.is_dir(), reason="no ../shared/data beside this checkout")
def test_bundled_copy_equals_shared_data() -> None:
    shared = sorted(p.relative_to(_SHARED) for p in _SHARED.rglob("*") if p.is_file())
    bundled = sorted(p.relative_to(_BUNDLED) for p in _BUNDLED.rglob("*") if p.is_file())
    assert shared == bundled
    for rel in shared:
        assert (_SHARED / rel).read_bytes() == (_BUNDLED / rel).read_bytes(), rel
