"""Property tests: whatever the bytes, only EventLogError subclasses escape the parser,
and decoders never raise on a parsed event."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soapattest.errors import EventLogError
from soapattest.tpm.eventlog import (
    EventLogLimits,
    EventType,
    UntrustedEvent,
    decode_event,
    parse_event_log,
    replay,
)
from soapattest.tpm.eventlog.cursor import DecodeError
from soapattest.tpm.eventlog.decode import decode_data
from soapattest.tpm.eventlog.devicepath import device_path_text
from tests.unit.test_eventlog_support import read

FUZZ = settings(
    max_examples=150,
    deadline=800,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Small real logs of each format, so one example stays well under a second.
SEEDS = [
    read("small/tpm2tools_event-uefivar.bin"),
    read("tpm2tools_event-sd-boot-fedora37.bin"),
    read("imaverify_vm_binary_bios_measurements.bin"),
    read("goattest_short_no_action.bin"),
    read("tpm2tools_event-uefi-sha1-log.bin")[:4000],
    read("gotpmtools_glinux-alex.bin")[:6000],
]
LIMITS = EventLogLimits(max_log_bytes=64 * 1024, max_events=4096, max_event_data_bytes=32 * 1024)
TYPES = [int(t) for t in EventType] + [0x12345678]


def check(data: bytes) -> None:
    """Parse; on success replay and decode everything. Nothing but EventLogError may escape."""
    try:
        log = parse_event_log(data, limits=LIMITS)
    except EventLogError as exc:
        assert type(exc) is not EventLogError  # always a specific subclass
        assert exc.offset is None or 0 <= exc.offset <= len(data)
        return
    assert log.events
    replay(log)
    for event in log.events:
        decoded = decode_event(event, uintn_bytes=log.uintn_bytes)
        assert isinstance(decoded.summary, str)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes_after_a_valid_header(tail: bytes) -> None:
    check(SEEDS[0][:73] + tail)


@st.composite
def mutated_log(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x03, 0x04, 0x0B]))
        elif action == "truncate":
            del data[pos:]
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
    return bytes(data)


@FUZZ
@given(mutated_log())
def test_mutated_real_logs(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 2**32 - 1), st.integers(0, 200))
def test_size_fields_set_to_any_value(seed: bytes, value: int, where: int) -> None:
    data = bytearray(seed)
    pos = min(where * 4, max(len(data) - 4, 0))
    data[pos : pos + 4] = value.to_bytes(4, "little")
    check(bytes(data))


@FUZZ
@given(st.sampled_from(TYPES), st.binary(max_size=600), st.sampled_from([4, 8]))
def test_decoders_raise_only_decode_error(etype: int, data: bytes, uintn: int) -> None:
    with contextlib.suppress(DecodeError):
        decode_data(etype, data, uintn)
    decoded = decode_event(UntrustedEvent(1, 0, 7, etype, {"sha256": bytes(32)}, data))
    assert isinstance(decoded.summary, str)


@FUZZ
@given(st.binary(max_size=512))
def test_device_path_text_never_raises(data: bytes) -> None:
    assert isinstance(device_path_text(data), str)


@pytest.mark.parametrize("cut", range(0, 300, 7))
def test_every_truncation_of_a_real_log_is_typed(cut: int) -> None:
    seed = read("small/tpm2tools_event-uefiservices.bin")
    check(seed[: len(seed) - cut] if cut < len(seed) else b"")
