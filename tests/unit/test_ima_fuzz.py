"""Fuzzing the IMA parsers: random and mutated input only ever raises ImaLogError."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from soapattest.errors import ImaLogError
from soapattest.tpm.ima import (
    ImaLimits,
    ImaLog,
    find_template_digest_mismatches,
    parse_ima,
    parse_ima_ascii,
    parse_ima_binary,
    replay_ima,
)
from tests.unit.test_ima_support import (
    ASCII_LIST,
    SHA1_LIST,
    ascii_line,
    binary_entry,
    binary_ima_entry,
    d_ng,
    n_ng,
    read_list,
    sha1,
    td,
)

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
)
LIMITS = ImaLimits(max_bytes=1 << 16, max_entries=64, max_template_data_len=4096)
FILE = hashlib.sha256(b"f").digest()

# Small valid seeds of every shape the parsers know.
BINARY_SEED = (
    binary_entry("ima-ng", td(d_ng("sha1", sha1(b"a").digest()), n_ng("boot_aggregate")))
    + binary_entry("ima-sig", td(d_ng("sha256", FILE), n_ng("/bin/x"), b"\x03\x02sig"))
    + binary_entry("ima-buf", td(d_ng("sha256", FILE), n_ng("kexec-cmdline"), b"ro quiet"))
    + binary_ima_entry(sha1(b"x").digest(), "/old")
    + binary_entry("ima-ng", td(d_ng("sha256", bytes(32)), n_ng("/v")), violation=True)
)
ASCII_SEED = (
    ascii_line("ima-ng", [f"sha256:{FILE.hex()}", "/bin/x"], b"\x01" * 20)
    + ascii_line("ima-sig", [f"sha256:{FILE.hex()}", "/bin/y", ""], b"\x02" * 20, pcr=9)
    + ascii_line("ima-buf", [f"sha256:{FILE.hex()}", "evt", "00ff"], b"\x03" * 20)
    + ascii_line("ima", ["00" * 20, "/old"], b"\x04" * 20)
)
REAL_BINARY_HEAD = read_list(SHA1_LIST)[:4000]
REAL_ASCII_HEAD = read_list(ASCII_LIST)[:4000]


def _exercise(log: ImaLog) -> None:
    """What a verifier does with a parsed list must not raise anything else either."""
    assert isinstance(log, ImaLog)
    for bank in ("sha1", "sha256"):
        with contextlib.suppress(ImaLogError):
            replay_ima(log.entries, bank)
    find_template_digest_mismatches(log.entries)
    _ = (log.violations, log.templates, log.boot_aggregate_entry)


PARSERS: tuple[Callable[[bytes], ImaLog], ...] = (
    lambda d: parse_ima(d, limits=LIMITS),
    lambda d: parse_ima(d, limits=LIMITS, allow_trailing_partial=True),
    lambda d: parse_ima_binary(d, limits=LIMITS),
    lambda d: parse_ima_binary(d, template_hash_alg="sha256", limits=LIMITS),
    lambda d: parse_ima_ascii(d, limits=LIMITS),
)


def _parse_all(data: bytes) -> None:
    for parse in PARSERS:
        try:
            log = parse(data)
        except ImaLogError:
            continue
        _exercise(log)


def test_seeds_parse() -> None:
    """Positive twin of the fuzzers: the seeds themselves are valid lists."""
    assert len(parse_ima(BINARY_SEED).entries) == 5
    assert len(parse_ima(ASCII_SEED).entries) == 4
    assert parse_ima(REAL_ASCII_HEAD, allow_trailing_partial=True).entries
    assert parse_ima(REAL_BINARY_HEAD, allow_trailing_partial=True).entries


@FUZZ
@given(st.binary(max_size=512))
@example(b"\n")
@example(b"10 ")
@example(b"\x0a\x00\x00\x00")
def test_random_bytes_raise_only_ima_log_errors(data: bytes) -> None:
    _parse_all(data)


@FUZZ
@given(st.text(alphabet=" 0123456789abcdef:|/\n-imangsh", max_size=400))
def test_random_ascii_like_text_raises_only_ima_log_errors(text: str) -> None:
    _parse_all(text.encode())


def _mutate(seed: bytes, data: st.DataObject) -> bytes:
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not buf:
            break
        at = data.draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            buf[at] = data.draw(st.sampled_from([0, 1, 0x20, 0x3A, 0x0A, 0x7F, 0xFF]))
        elif op == "insert":
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del buf[at : at + data.draw(st.integers(1, 8))]
        else:
            del buf[at:]
    return bytes(buf)


@pytest.mark.parametrize(
    "seed",
    [BINARY_SEED, ASCII_SEED, REAL_BINARY_HEAD, REAL_ASCII_HEAD],
    ids=["binary", "ascii", "real-binary", "real-ascii"],
)
@FUZZ
@given(data=st.data())
def test_mutated_lists_raise_only_ima_log_errors(seed: bytes, data: st.DataObject) -> None:
    _parse_all(_mutate(seed, data))


@FUZZ
@given(
    length=st.integers(0, 2**32 - 1),
    which=st.sampled_from(["name", "data"]),
)
def test_hostile_length_fields_raise_only_ima_log_errors(length: int, which: str) -> None:
    record = bytearray(binary_entry("ima-ng", td(d_ng("sha256", FILE), n_ng("/a"))))
    at = 24 if which == "name" else 24 + 4 + 6
    record[at : at + 4] = length.to_bytes(4, "little")
    _parse_all(bytes(record))
