"""Reading the event log and chunking the IMA list (agent side, plain files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from soapattest.agent.logs import read_event_log, read_ima_chunk
from soapattest.errors import EventLogUnavailableError, ImaLogUnavailableError, InvalidArgumentError
from soapattest.tpm.ima import parse_ima_binary
from tests.conftest import EVENTLOG_DIR, IMA_DIR

IMA_SHA256 = IMA_DIR / "imaverify_vm_binary_runtime_measurements_sha256"
IMA_SHA1 = IMA_DIR / "imaverify_vm_binary_runtime_measurements_sha1"


@pytest.fixture(params=[(IMA_SHA256, "sha256"), (IMA_SHA1, "sha1")], ids=["sha256", "sha1"])
def ima_file(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    src, alg = request.param
    # kernel naming: binary_runtime_measurements (SHA-1) or ..._sha256
    name = "binary_runtime_measurements" + ("" if alg == "sha1" else f"_{alg}")
    dst = tmp_path / name
    dst.write_bytes(src.read_bytes())
    return dst, alg


def test_event_log_read_whole() -> None:
    path = EVENTLOG_DIR / "gotpmtools_rhel8-uefi.bin"
    assert read_event_log(path, 1 << 20) == path.read_bytes()


@pytest.mark.parametrize("case", ["missing", "empty", "too_big", "directory"])
def test_event_log_unavailable(tmp_path: Path, case: str) -> None:
    path = tmp_path / "log.bin"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "too_big":
        path.write_bytes(bytes(2048))
    elif case == "directory":
        path.mkdir()
    with pytest.raises(EventLogUnavailableError) as err:
        read_event_log(path, 1024)
    assert err.value.path == str(path)


@pytest.mark.parametrize("chunk_max", [4096, 65536])
def test_ima_chunks_end_on_entries_and_cover_the_list(ima_file: tuple[Path, str],
                                                       chunk_max: int) -> None:
    path, alg = ima_file
    whole = path.read_bytes()
    offset, parts, count = 0, [], 0
    while True:
        c = read_ima_chunk(path, offset, chunk_max)
        assert c.offset == offset and c.next_offset == offset + len(c.data)
        assert 0 < len(c.data) <= chunk_max
        count += len(parse_ima_binary(c.data, template_hash_alg=alg).entries)
        parts.append(c.data)
        offset = c.next_offset
        if not c.more:
            break
    assert b"".join(parts) == whole
    assert count == len(parse_ima_binary(whole, template_hash_alg=alg).entries)


def test_ima_chunk_at_end_and_beyond(ima_file: tuple[Path, str]) -> None:
    path, _ = ima_file
    size = path.stat().st_size
    end = read_ima_chunk(path, size, 4096)
    assert (end.data, end.next_offset, end.more) == (b"", size, False)
    for bad in (size + 1, -1):
        with pytest.raises(InvalidArgumentError) as err:
            read_ima_chunk(path, bad, 4096)
        assert err.value.argument == "offset"


def test_entry_bigger_than_a_chunk_is_returned_whole(tmp_path: Path) -> None:
    name = b"ima-ng"
    data = bytes(5000)
    entry = (10).to_bytes(4, "little") + bytes(20) + len(name).to_bytes(4, "little") + name \
        + len(data).to_bytes(4, "little") + data
    path = tmp_path / "binary_runtime_measurements"
    path.write_bytes(entry * 2)
    first = read_ima_chunk(path, 0, 4096)
    assert (first.data, first.more) == (entry, True)
    second = read_ima_chunk(path, first.next_offset, 4096)
    assert (second.data, second.more) == (entry, False)


def test_bytes_that_are_not_entries_are_served_raw(tmp_path: Path) -> None:
    path = tmp_path / "binary_runtime_measurements"
    path.write_bytes(b"\xff" * 10000)
    c = read_ima_chunk(path, 0, 4096)
    assert (len(c.data), c.more) == (4096, True)


def test_ima_missing(tmp_path: Path) -> None:
    with pytest.raises(ImaLogUnavailableError):
        read_ima_chunk(tmp_path / "binary_runtime_measurements", 0, 4096)
