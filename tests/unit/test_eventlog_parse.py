"""parse_event_log: real logs, the bad/ corpus, and one hand-made log per rejection reason."""

from __future__ import annotations

import pytest

from soapattest.errors import (
    EventLogDigestCountError,
    EventLogDuplicateDigestError,
    EventLogEmptyError,
    EventLogError,
    EventLogLimitError,
    EventLogPcrIndexError,
    EventLogSpecIdError,
    EventLogStartupLocalityError,
    EventLogTruncatedError,
    EventLogUnknownAlgorithmError,
)
from soapattest.tpm.eventlog import (
    DEFAULT_LIMITS,
    EventLog,
    EventLogLimits,
    EventType,
    parse_event_log,
)
from tests.unit.test_eventlog_support import (
    ACTION,
    ALGS,
    BAD_LOGS,
    EV_NO_ACTION,
    EV_SEPARATOR,
    EXPECTED,
    GOOD_LOGS,
    SEPARATOR,
    STARTUP_LOCALITY_3,
    agile_log,
    event2,
    hashed,
    legacy_event,
    read,
    spec_id_data,
    zeros,
)

# --------------------------------------------------------------------------
# Real logs


@pytest.mark.parametrize("name", GOOD_LOGS)
def test_real_log_parses_with_the_expected_metadata(name: str) -> None:
    expected = EXPECTED[name]
    log = parse_event_log(read(name))
    assert log.format == expected["format"]
    assert log.event_count == expected["event_count"] == len(log.events)
    assert log.startup_locality == expected["startup_locality"]
    assert log.hcrtm == expected["hcrtm_event"]
    assert [e.index for e in log.events] == list(range(len(log.events)))
    offsets = [e.offset for e in log.events]
    assert offsets[0] == 0
    assert offsets == sorted(set(offsets))
    for event in log.events:
        if event.extends:
            assert set(log.banks) <= set(event.digests)


def test_crypto_agile_header_is_parsed() -> None:
    log = parse_event_log(read("gotpmtools_rhel8-uefi.bin"))
    assert log.spec_id is not None
    assert [a.name for a in log.spec_id.algorithms] == ["sha1", "sha256", "sha384"]
    assert log.banks == ("sha1", "sha256", "sha384")
    assert log.spec_id.uintn_size == 2
    assert log.uintn_bytes == 8
    first = log.events[0]
    assert first.type_name == "EV_NO_ACTION"
    assert not first.extends
    assert first.digests == {"sha1": bytes(20)}


def test_windows_trust_point_in_pcr_minus_one_is_accepted() -> None:
    # The Windows log ends with an EV_NO_ACTION event in "PCR" 0xFFFFFFFF.
    log = parse_event_log(read("goattest_option_rom.bin"))
    last = log.events[-1]
    assert (last.pcr, last.untrusted_type, last.extends) == (0xFFFFFFFF, EV_NO_ACTION, False)


def test_parse_is_deterministic_and_accepts_bytes_like_input() -> None:
    raw = read("gotpmtools_glinux-alex.bin")
    log = parse_event_log(raw)
    assert parse_event_log(bytearray(raw)) == log
    assert parse_event_log(memoryview(raw)) == log  # type: ignore[arg-type]
    ends = [e.offset for e in log.events[1:]] + [len(raw)]
    for event, end in zip(log.events, ends, strict=True):
        assert raw[end - len(event.data) : end] == event.data


# --------------------------------------------------------------------------
# The bad/ corpus: (error class, event index, byte offset of the failing field)

BAD_EXPECTATIONS: dict[str, tuple[type[EventLogError], int, int]] = {
    # event 5 starts at 1536; its eventSize field follows 12 + 3 digests (2+20, 2+32, 2+48 = 106)
    "bad/derived/rhel8_event5_size_huge.bin": (EventLogLimitError, 5, 1536 + 12 + 106),
    # the first digest algorithm of event 5
    "bad/derived/rhel8_event5_unknown_digest_alg.bin": (EventLogUnknownAlgorithmError, 5, 1548),
    # numberOfAlgorithms: 32-byte header + 24 bytes into the SpecID data
    "bad/derived/rhel8_specid_numalgs_huge.bin": (EventLogSpecIdError, 0, 56),
    # event 3 starts at 397: its first digest (after the 12-byte header and alg id)
    "bad/derived/rhel8_trunc_mid_digest.bin": (EventLogTruncatedError, 3, 397 + 14),
    # event 3's eventSize field
    "bad/derived/rhel8_trunc_mid_event_data.bin": (EventLogTruncatedError, 3, 397 + 12 + 106),
    # event 1 starts at 73: first digest algorithm id is missing
    "bad/derived/rhel8_trunc_mid_event_header.bin": (EventLogTruncatedError, 1, 73 + 12),
    # the first event's eventSize field (offset 28) claims more than the file holds
    "bad/derived/rhel8_trunc_mid_specid.bin": (EventLogTruncatedError, 0, 28),
    "bad/goattest_event_size_too_large.bin": (EventLogLimitError, 0, 28),
    # vendorInfoSize (the last byte of the 37-byte SpecID data) overruns the event
    "bad/tpm2tools_specid-vendordata.bin": (EventLogSpecIdError, 0, 32 + 36),
}


def test_every_bad_log_has_an_expectation() -> None:
    assert sorted(BAD_EXPECTATIONS) == BAD_LOGS


@pytest.mark.parametrize("name", BAD_LOGS)
def test_bad_log_is_rejected_with_a_typed_error(name: str) -> None:
    error, index, offset = BAD_EXPECTATIONS[name]
    with pytest.raises(EventLogError) as info:
        parse_event_log(read(name))
    assert type(info.value) is error
    assert (info.value.event_index, info.value.offset) == (index, offset)
    assert f"event {index}, byte offset {offset}: " in str(info.value)
    assert info.value.code == "Client.InvalidEventLog"


def test_huge_size_is_rejected_even_with_generous_limits() -> None:
    limits = EventLogLimits(max_event_data_bytes=2**40)
    with pytest.raises(EventLogTruncatedError) as info:
        parse_event_log(read("bad/derived/rhel8_event5_size_huge.bin"), limits=limits)
    assert info.value.event_index == 5


# --------------------------------------------------------------------------
# Hand-made logs: each negative case next to its positive twin


def test_minimal_crypto_agile_log_parses() -> None:
    log = parse_event_log(agile_log([]))
    assert (log.format, log.event_count, log.banks) == ("crypto_agile", 1, ("sha1", "sha256"))


def test_empty_log_is_rejected() -> None:
    with pytest.raises(EventLogEmptyError):
        parse_event_log(b"")


def test_log_size_limit() -> None:
    raw = agile_log([SEPARATOR])
    assert parse_event_log(raw, limits=EventLogLimits(max_log_bytes=len(raw))).event_count == 2
    with pytest.raises(EventLogLimitError):
        parse_event_log(raw, limits=EventLogLimits(max_log_bytes=len(raw) - 1))


def test_event_count_limit() -> None:
    raw = agile_log([SEPARATOR, ACTION])
    assert parse_event_log(raw, limits=EventLogLimits(max_events=3)).event_count == 3
    with pytest.raises(EventLogLimitError) as info:
        parse_event_log(raw, limits=EventLogLimits(max_events=2))
    assert info.value.event_index == 2


def test_event_data_size_limit() -> None:
    raw = agile_log([ACTION])
    size = len(ACTION[2])
    assert parse_event_log(raw, limits=EventLogLimits(max_event_data_bytes=size)).event_count == 2
    with pytest.raises(EventLogLimitError) as info:
        parse_event_log(raw, limits=EventLogLimits(max_event_data_bytes=size - 1))
    assert info.value.event_index == 1


def test_default_limits_are_bounded() -> None:
    assert 0 < DEFAULT_LIMITS.max_event_data_bytes <= DEFAULT_LIMITS.max_log_bytes <= 64 * 2**20
    assert 0 < DEFAULT_LIMITS.max_events <= 1_000_000


@pytest.mark.parametrize("cut", [1, 5, 13, 20, 40])
def test_truncated_last_event_is_rejected(cut: int) -> None:
    raw = agile_log([SEPARATOR, ACTION])
    assert parse_event_log(raw).event_count == 3
    with pytest.raises(EventLogTruncatedError) as info:
        parse_event_log(raw[:-cut])
    assert info.value.event_index == 2


def test_truncated_first_event_is_rejected() -> None:
    raw = agile_log([])
    with pytest.raises(EventLogTruncatedError) as info:
        parse_event_log(raw[:31])
    assert (info.value.event_index, info.value.offset) == (0, 0)


@pytest.mark.parametrize("pcr", [0, 23])
def test_pcr_in_range_is_accepted(pcr: int) -> None:
    log = parse_event_log(agile_log([(pcr, EV_SEPARATOR, b"\x00" * 4)]))
    assert log.events[1].pcr == pcr


def test_pcr_out_of_range_is_rejected() -> None:
    with pytest.raises(EventLogPcrIndexError) as info:
        parse_event_log(agile_log([SEPARATOR, (24, EV_SEPARATOR, b"\x00" * 4)]))
    assert (info.value.pcr, info.value.event_index) == (24, 2)


def test_pcr_out_of_range_is_rejected_in_legacy_logs() -> None:
    raw = legacy_event(4, EV_SEPARATOR, bytes(20), b"\0" * 4)
    assert parse_event_log(raw).events[0].pcr == 4
    with pytest.raises(EventLogPcrIndexError):
        parse_event_log(raw + legacy_event(99, EV_SEPARATOR, bytes(20), b"\0" * 4))


def test_digest_in_any_order_is_accepted() -> None:
    base = agile_log([])
    data = b"\x00" * 4
    in_order = hashed(["sha1", "sha256"], data)
    swapped = list(reversed(in_order))
    a = parse_event_log(base + event2(7, EV_SEPARATOR, in_order, data))
    b = parse_event_log(base + event2(7, EV_SEPARATOR, swapped, data))
    assert a.events[1].digests == b.events[1].digests


def test_digest_of_an_undeclared_algorithm_is_rejected() -> None:
    base = agile_log([])
    data = b"x"
    digests = [(ALGS["sha1"][0], bytes(20)), (ALGS["sha384"][0], bytes(48))]
    with pytest.raises(EventLogUnknownAlgorithmError) as info:
        parse_event_log(base + event2(4, EV_SEPARATOR, digests, data))
    assert (info.value.alg, info.value.event_index) == (0x000C, 1)


def test_duplicate_digest_algorithm_is_rejected() -> None:
    digests = [(ALGS["sha1"][0], bytes(20)), (ALGS["sha1"][0], bytes(20))]
    with pytest.raises(EventLogDuplicateDigestError) as info:
        parse_event_log(agile_log([]) + event2(4, EV_SEPARATOR, digests, b"x"))
    assert info.value.alg == 0x0004


def test_more_digests_than_declared_algorithms_is_rejected() -> None:
    digests = [*zeros(["sha1", "sha256"]), (ALGS["sha384"][0], bytes(48))]
    with pytest.raises(EventLogDigestCountError):
        parse_event_log(agile_log([]) + event2(4, EV_SEPARATOR, digests, b"x"))


def test_event_missing_a_bank_makes_that_bank_unavailable() -> None:
    # tpm2-tools test logs do this; replaying the incomplete bank is refused later.
    data = b"\x00" * 4
    raw = agile_log([]) + event2(7, EV_SEPARATOR, hashed(["sha256"], data), data)
    log = parse_event_log(raw)
    assert log.banks == ("sha256",)
    assert set(log.events[1].digests) == {"sha256"}


def test_missing_bank_in_an_unextended_event_does_not_matter() -> None:
    raw = agile_log([]) + event2(0, EV_NO_ACTION, zeros(["sha1"]), b"whatever\x00")
    assert parse_event_log(raw).banks == ("sha1", "sha256")


# SpecID -------------------------------------------------------------------


def _with_spec(spec: bytes, *, pcr: int = 0, etype: int = EV_NO_ACTION) -> bytes:
    return legacy_event(pcr, etype, bytes(20), spec)


def test_spec_id_with_vendor_info_parses() -> None:
    log = parse_event_log(_with_spec(spec_id_data(vendor=b"\xde\xad\xbe\xef")))
    assert log.spec_id is not None
    assert log.spec_id.vendor_info == b"\xde\xad\xbe\xef"


@pytest.mark.parametrize(
    "spec",
    [
        spec_id_data(algs=[(0x000B, 20)]),  # sha256 with a 20-byte digest
        spec_id_data(algs=[]),  # no algorithm
        spec_id_data(algs=[(0x0004, 20), (0x0004, 20)]),  # listed twice
        spec_id_data() + b"\x00",  # a byte after vendorInfo
        spec_id_data()[:-1],  # no vendorInfoSize
        spec_id_data(algs=[(0x0027, 32)]),  # only an algorithm we cannot replay
        spec_id_data(algs=[(0x0027, 0), (0x0004, 20)]),  # zero-size digest
        spec_id_data()[:27],  # shorter than the fixed fields
    ],
)
def test_malformed_spec_id_is_rejected(spec: bytes) -> None:
    with pytest.raises(EventLogSpecIdError) as info:
        parse_event_log(_with_spec(spec))
    assert info.value.event_index == 0


def test_spec_id_signature_outside_a_pcr0_no_action_event_is_rejected() -> None:
    assert parse_event_log(_with_spec(spec_id_data())).format == "crypto_agile"
    with pytest.raises(EventLogSpecIdError):
        parse_event_log(_with_spec(spec_id_data(), etype=EV_SEPARATOR))
    with pytest.raises(EventLogSpecIdError):
        parse_event_log(_with_spec(spec_id_data(), pcr=1))


def test_unknown_algorithm_in_spec_id_is_parsed_but_not_a_bank() -> None:
    spec = spec_id_data(algs=[(0x0004, 20), (0x0027, 32)])
    data = b"\x00" * 4
    digests = [*hashed(["sha1"], data), (0x0027, b"\x11" * 32)]
    log = parse_event_log(_with_spec(spec) + event2(7, EV_SEPARATOR, digests, data))
    assert log.banks == ("sha1",)
    assert dict(log.events[1].digests) == {"sha1": digests[0][1]}
    assert log.spec_id is not None
    assert [a.name for a in log.spec_id.algorithms] == ["sha1", None]


# Legacy format ---------------------------------------------------------------


def test_legacy_log_parses() -> None:
    raw = legacy_event(0, 0x8, b"\x01" * 20, b"1.0\x00") + legacy_event(
        7, EV_SEPARATOR, b"\x02" * 20, b"\x00" * 4
    )
    log = parse_event_log(raw)
    assert (log.format, log.banks, log.spec_id, log.event_count) == (
        "tcg1.2_sha1",
        ("sha1",),
        None,
        2,
    )
    assert log.events[1].digests == {"sha1": b"\x02" * 20}
    assert log.events[0].untrusted_type == EventType.EV_S_CRTM_VERSION


def test_legacy_log_with_a_tcg12_spec_id_header_is_legacy() -> None:
    header = legacy_event(0, EV_NO_ACTION, bytes(20), b"Spec ID Event00\x00" + bytes(8))
    log = parse_event_log(header)
    assert log.format == "tcg1.2_sha1"


# StartupLocality ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "hcrtm"), [(0, False), (3, False), (4, True)])
def test_startup_locality_is_recorded(value: int, hcrtm: bool) -> None:
    log = parse_event_log(agile_log([(0, EV_NO_ACTION, b"StartupLocality\x00" + bytes([value]))]))
    assert (log.startup_locality, log.hcrtm) == (value, hcrtm)


def test_startup_locality_outside_pcr0_is_ignored() -> None:
    log = parse_event_log(agile_log([(1, EV_NO_ACTION, b"StartupLocality\x00\x03")]))
    assert log.startup_locality is None


@pytest.mark.parametrize(
    "events",
    [
        [STARTUP_LOCALITY_3, STARTUP_LOCALITY_3],  # twice
        [(0, EV_NO_ACTION, b"StartupLocality\x00\x03\x00")],  # wrong size
        [(0, EV_NO_ACTION, b"StartupLocality\x00\x02")],  # TPM2_Startup never comes from 2
    ],
)
def test_bad_startup_locality_is_rejected(events: list[tuple[int, int, bytes]]) -> None:
    with pytest.raises(EventLogStartupLocalityError):
        parse_event_log(agile_log(events))


def test_hcrtm_event_sets_the_flag() -> None:
    log = parse_event_log(agile_log([(0, 0x80000010, b"HCRTM")]))
    assert log.hcrtm
    assert log.startup_locality is None


def test_from_events_rebuilds_an_equal_log() -> None:
    log = parse_event_log(read("tpm2tools_event-arch-linux.bin"))
    rebuilt = EventLog.from_events(
        format=log.format,
        banks=log.banks,
        events=log.events,
        spec_id=log.spec_id,
        startup_locality=log.startup_locality,
        hcrtm=log.hcrtm,
    )
    assert rebuilt.events == log.events
    assert rebuilt.event_count == log.event_count


def test_from_events_refuses_an_event_without_a_bank_digest() -> None:
    log = parse_event_log(agile_log([SEPARATOR]))
    with pytest.raises(EventLogDigestCountError):
        EventLog.from_events(format=log.format, banks=("sha384",), events=log.events)


@pytest.mark.parametrize("field", ["max_log_bytes", "max_events", "max_event_data_bytes"])
def test_limits_must_be_positive(field: str) -> None:
    assert getattr(EventLogLimits(**{field: 1}), field) == 1
    with pytest.raises(ValueError, match=field):
        EventLogLimits(**{field: 0})
