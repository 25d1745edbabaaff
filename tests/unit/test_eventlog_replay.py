"""replay(): every real log against EXPECTED.json, and the PFP initial-value rules."""

from __future__ import annotations

import hashlib

import pytest

from soapattest.errors import EventLogBankError
from soapattest.tpm.eventlog import (
    EventLog,
    events_for_pcr,
    initial_pcr_value,
    parse_event_log,
    replay,
    replay_steps,
)
from tests.unit.test_eventlog_support import (
    ACTION,
    EV_EFI_HCRTM_EVENT,
    EV_NO_ACTION,
    EV_SEPARATOR,
    EXPECTED,
    GOOD_LOGS,
    SEPARATOR,
    STARTUP_LOCALITY_3,
    agile_log,
    event2,
    extend,
    read,
)


def sha1(data: bytes) -> bytes:
    """SHA-1 as the TPM's sha1 bank uses it (not for security here)."""
    return hashlib.new("sha1", data, usedforsecurity=False).digest()


@pytest.mark.parametrize("name", GOOD_LOGS)
def test_real_log_replays_to_the_consensus_values(name: str) -> None:
    expected = EXPECTED[name]["consensus_pcrs"]
    log = parse_event_log(read(name))
    values = replay(log)
    got = {bank: {str(p): v.hex() for p, v in pcrs.items()} for bank, pcrs in values.items()}
    for bank, pcrs in expected.items():
        for pcr, value in pcrs.items():
            assert got[bank][pcr] == value, f"{bank} PCR {pcr}"
    # Nothing beyond the consensus, except PCR0 set only by a StartupLocality event.
    for bank, pcrs in got.items():
        extra = set(pcrs) - set(expected.get(bank, {}))
        assert extra <= {"0"}
        if extra:
            assert log.startup_locality is not None
            assert not any(e.pcr == 0 and e.extends for e in log.events)


def test_startup_locality_alone_sets_pcr0() -> None:
    log = parse_event_log(read("goattest_short_no_action.bin"))
    assert replay(log) == {"sha1": {0: bytes(19) + b"\x03"}}


def test_incomplete_bank_is_not_replayed_but_complete_ones_are() -> None:
    # event-uefiaction.bin declares 4 banks but its event carries only sha1 and sha256.
    log = parse_event_log(read("small/tpm2tools_event-uefiaction.bin"))
    assert log.banks == ("sha1", "sha256")
    assert set(replay(log)) == {"sha1", "sha256"}
    with pytest.raises(EventLogBankError) as info:
        replay(log, banks=["sha384"])
    assert info.value.bank == "sha384"


def test_ebs_missing_log_replays_without_the_missing_events() -> None:
    # The real PCR5 of this machine (shipped by go-attestation) is the replay value
    # extended by the two ExitBootServices actions the firmware forgot to log.
    name = "goattest_ebs_event_missing.bin"
    log = parse_event_log(read(name))
    replayed = replay(log)["sha1"][5]
    shipped = bytes.fromhex(EXPECTED[name]["expected"][0]["values"]["sha1"]["5"])
    assert replayed != shipped
    fixed = extend(
        "sha1",
        replayed,
        sha1(b"Exit Boot Services Invocation"),
        sha1(b"Exit Boot Services Returned with Success"),
    )
    assert fixed == shipped


@pytest.mark.parametrize("bank", ["sha1", "sha256"])
def test_replay_extends_each_digest_in_order(bank: str) -> None:
    log = parse_event_log(agile_log([SEPARATOR, ACTION, (7, EV_SEPARATOR, b"\x01\x00\x00\x00")]))

    def digest(data: bytes) -> bytes:
        return hashlib.new(bank, data).digest()

    zero = bytes(hashlib.new(bank).digest_size)
    assert replay(log)[bank] == {
        4: extend(bank, zero, digest(ACTION[2])),
        7: extend(bank, zero, digest(SEPARATOR[2]), digest(b"\x01\x00\x00\x00")),
    }


def test_startup_locality_3_is_the_initial_value_of_pcr0() -> None:
    data = b"firmware"
    log = parse_event_log(agile_log([STARTUP_LOCALITY_3, (0, 0x1, data)]))
    start = bytes(31) + b"\x03"
    assert replay(log)["sha256"][0] == extend("sha256", start, hashlib.sha256(data).digest())
    assert initial_pcr_value(log, "sha256", 0) == start
    assert initial_pcr_value(log, "sha256", 1) == bytes(32)


def test_without_startup_locality_pcr0_starts_at_zero() -> None:
    data = b"firmware"
    log = parse_event_log(agile_log([(0, 0x1, data)]))
    assert replay(log)["sha256"][0] == extend("sha256", bytes(32), hashlib.sha256(data).digest())


def test_hcrtm_event_starts_pcr0_at_locality_4_and_is_extended() -> None:
    # TPM 2.0 Part 1 34.3: _TPM_Hash_Start resets PCR0 to 0..04, _TPM_Hash_End extends it.
    log = parse_event_log(agile_log([(0, EV_EFI_HCRTM_EVENT, b"HCRTM"), (0, 0x1, b"fw")]))
    start = bytes(19) + b"\x04"
    assert replay(log)["sha1"][0] == extend("sha1", start, sha1(b"HCRTM"), sha1(b"fw"))


def test_hcrtm_wins_over_a_startup_locality_of_3() -> None:
    # With an H-CRTM the TPM ignores the startup locality (reference TPM2_Startup).
    log = parse_event_log(agile_log([STARTUP_LOCALITY_3, (0, EV_EFI_HCRTM_EVENT, b"HCRTM")]))
    assert (log.startup_locality, log.hcrtm) == (3, True)
    assert initial_pcr_value(log, "sha1", 0) == bytes(19) + b"\x04"


def test_startup_locality_4_starts_pcr0_at_4() -> None:
    log = parse_event_log(agile_log([(0, EV_NO_ACTION, b"StartupLocality\x00\x04")]))
    assert replay(log)["sha256"] == {0: bytes(31) + b"\x04"}


def test_no_action_events_are_never_extended_whatever_their_digests() -> None:
    digests = [(0x0004, b"\x55" * 20), (0x000B, b"\x66" * 32)]
    raw = agile_log([SEPARATOR]) + event2(7, EV_NO_ACTION, digests, b"note")
    log = parse_event_log(raw)
    assert replay(log) == replay(parse_event_log(agile_log([SEPARATOR])))
    assert events_for_pcr(log, 7) == (log.events[1],)
    assert events_for_pcr(log, 7, include_no_action=True) == (log.events[1], log.events[2])


def test_drtm_pcrs_start_at_all_ones() -> None:
    log = parse_event_log(agile_log([(17, EV_SEPARATOR, b"\x00" * 4)]))
    start = b"\xff" * 32
    assert initial_pcr_value(log, "sha256", 17) == start
    assert replay(log)["sha256"][17] == extend("sha256", start, hashlib.sha256(bytes(4)).digest())


def test_bank_selection() -> None:
    log = parse_event_log(read("gotpmtools_rhel8-uefi.bin"))
    full = replay(log)
    assert list(full) == ["sha1", "sha256", "sha384"]
    assert replay(log, banks=["sha384", "sha384"]) == {"sha384": full["sha384"]}
    with pytest.raises(EventLogBankError):
        replay(log, banks=["sha512"])
    with pytest.raises(EventLogBankError):
        replay(log, banks=["md5"])


def test_replay_steps_show_each_event_of_a_pcr() -> None:
    log = parse_event_log(read("gotpmtools_gdc-host.bin"))
    start, steps = replay_steps(log, "sha256", 0)
    assert start == bytes(31) + b"\x03"
    assert [s.event for s in steps] == list(events_for_pcr(log, 0))
    assert steps[-1].value == replay(log)["sha256"][0]
    assert all(s.event.pcr == 0 and s.event.extends for s in steps)


def test_log_built_from_events_replays_the_same() -> None:
    log = parse_event_log(read("gotpmtools_cos-101-amd-sev.bin"))
    rebuilt = EventLog.from_events(format=log.format, banks=log.banks, events=log.events)
    assert replay(rebuilt) == replay(log)
