"""IMA PCR replay, template-digest consistency and boot_aggregate, on real and hand-made data."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

import pytest

from soapattest.errors import (
    ImaBootAggregateError,
    ImaLogError,
    ImaTemplateDataUnavailableError,
    ImaUnsupportedAlgorithmError,
)
from soapattest.tpm.ima import (
    IMA_PCR,
    ImaEntry,
    boot_aggregate,
    boot_aggregate_bank,
    check_boot_aggregate,
    find_template_digest_mismatches,
    parse_ima,
    parse_ima_ascii,
    parse_ima_binary,
    replay_ima,
    replay_ima_pcrs,
)
from tests.conftest import IMA_DIR
from tests.unit.test_ima_support import (
    ASCII_LIST,
    EXPECTED,
    FIRMWARE_LOG,
    LISTS,
    SHA1_LIST,
    SHA256_LIST,
    ascii_line,
    binary_entry,
    d_ng,
    n_ng,
    read_list,
    read_pcr_dump,
    sha1,
    td,
)


def _extend(h: Callable[..., object], value: bytes, digest: bytes) -> bytes:
    return h(value + digest).digest()  # type: ignore[attr-defined,no-any-return]


# --------------------------------------------------------------------------
# Real lists against the PCR values read on the same machine.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
def test_real_list_replays_to_the_expected_pcr10(name: str) -> None:
    log = parse_ima(read_list(name))
    for bank, pcrs in EXPECTED[name]["expected"]["values"].items():
        assert replay_ima(log.entries, bank).hex() == pcrs["10"]
    for bank, pcrs in EXPECTED[name]["replay"]["pcrs"].items():
        assert replay_ima_pcrs(log.entries, bank) == {10: bytes.fromhex(pcrs["10"])}


@pytest.mark.parametrize(
    ("name", "dump", "bank"),
    [
        # sha1 template digests, replayed into the sha256 bank via H(template data)
        (SHA1_LIST, "imaverify_vm_800ce6c_pcrs_sha1.txt", "sha256"),
        # sha256 template digests, replayed into the sha1 bank
        (SHA256_LIST, "imaverify_vm_800ce6c_pcrs_sha256.txt", "sha1"),
    ],
)
def test_real_list_replays_into_the_other_bank(name: str, dump: str, bank: str) -> None:
    log = parse_ima(read_list(name))
    assert log.template_hash_alg != bank
    pcrs = read_pcr_dump(IMA_DIR / dump)
    assert replay_ima(log.entries, log.template_hash_alg) == pcrs[log.template_hash_alg][10]
    assert replay_ima(log.entries, bank) == pcrs[bank][10]


def test_incremental_replay_from_a_start_value_equals_the_full_replay() -> None:
    log = parse_ima(read_list(ASCII_LIST))
    for bank in ("sha1", "sha256"):
        full = replay_ima(log.entries, bank)
        middle = replay_ima(log.entries[:1000], bank)
        assert replay_ima(log.entries[1000:], bank, start=middle) == full
        assert replay_ima(log.entries[1000:], bank) != full
    tail = parse_ima_ascii(
        b"".join(read_list(ASCII_LIST).splitlines(True)[1000:]), first_index=1000
    )
    assert tail.entries == log.entries[1000:]


def test_replay_start_must_have_the_bank_size() -> None:
    assert replay_ima([], "sha256", start=b"\x01" * 32) == b"\x01" * 32
    with pytest.raises(ImaLogError, match="start value is 20 bytes"):
        replay_ima([], "sha256", start=b"\x01" * 20)
    with pytest.raises(ImaLogError, match="PCR 11"):
        replay_ima_pcrs([], "sha1", start={11: b"\x01" * 32})


@pytest.mark.parametrize("bank", ["md5", "sha3_256", ""])
def test_replay_refuses_an_unknown_bank(bank: str) -> None:
    with pytest.raises(ImaUnsupportedAlgorithmError) as info:
        replay_ima([], bank)
    assert info.value.alg == bank
    assert replay_ima([], "sha384") == bytes(48)  # twin


# --------------------------------------------------------------------------
# Hand-made replays: violations, other PCRs, every bank.
# --------------------------------------------------------------------------

FILE = hashlib.sha256(b"x").digest()
DATA = td(d_ng("sha256", FILE), n_ng("/x"))
VIOLATION_DATA = td(d_ng("sha256", bytes(32)), n_ng("/x"))


@pytest.mark.parametrize("bank", ["sha1", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("recorded", ["sha1", "sha256"])
def test_replay_extends_template_digests_and_ff_for_violations(bank: str, recorded: str) -> None:
    data = (
        binary_entry("ima-ng", DATA, alg=recorded)
        + binary_entry("ima-ng", VIOLATION_DATA, alg=recorded, violation=True)
        + binary_entry("ima-ng", DATA, alg=recorded, pcr=11)
    )
    log = parse_ima_binary(data, template_hash_alg=recorded)
    assert [e.is_violation for e in log.entries] == [False, True, False]
    h = getattr(hashlib, bank)
    size = h().digest_size
    pcr10 = _extend(h, _extend(h, bytes(size), h(DATA).digest()), b"\xff" * size)
    pcr11 = _extend(h, bytes(size), h(DATA).digest())
    assert replay_ima(log.entries, bank) == pcr10
    assert replay_ima(log.entries, bank, pcr=11) == pcr11
    assert replay_ima_pcrs(log.entries, bank) == {10: pcr10, 11: pcr11}


def test_recorded_bank_uses_the_recorded_digest_other_banks_the_template_data() -> None:
    wrong = b"\x07" * 20  # not sha1(DATA): only the recorded (sha1) bank sees it
    (entry,) = parse_ima_binary(binary_entry("ima-ng", DATA, digest=wrong)).entries
    assert replay_ima([entry], "sha1") == _extend(hashlib.sha1, bytes(20), wrong)
    assert replay_ima([entry], "sha256") == _extend(
        hashlib.sha256, bytes(32), hashlib.sha256(DATA).digest()
    )


def test_ascii_entry_without_template_data_replays_only_into_its_recorded_bank() -> None:
    digest = sha1(b"opaque").digest()
    log = parse_ima_ascii(ascii_line("my-template", ["a"], digest))
    assert replay_ima(log.entries, "sha1") == _extend(hashlib.sha1, bytes(20), digest)
    with pytest.raises(ImaTemplateDataUnavailableError) as info:
        replay_ima(log.entries, "sha256")
    assert info.value.entry_index == 0


# --------------------------------------------------------------------------
# Template digest consistency: swapped file hash with and without a recomputed digest.
# --------------------------------------------------------------------------

TAMPERED = 100  # an ordinary file entry of the sha1 list


def _tampered_sha1_list(recompute_template_digest: bool) -> tuple[bytes, ImaEntry]:
    data = bytearray(read_list(SHA1_LIST))
    entry = parse_ima(bytes(data)).entries[TAMPERED]
    assert entry.file_hash is not None and entry.path and entry.path.startswith("/")
    at = data.index(entry.template_data)
    forged_hash = sha1(b"malware").digest()
    forged = entry.template_data.replace(entry.file_hash, forged_hash)
    assert len(forged) == len(entry.template_data) and forged != entry.template_data
    data[at : at + len(forged)] = forged
    if recompute_template_digest:
        digest_at = data.rindex(entry.template_digest, 0, at)
        data[digest_at : digest_at + 20] = sha1(forged).digest()
    return bytes(data), entry


def test_untouched_real_list_has_no_template_digest_mismatch() -> None:
    log = parse_ima(read_list(SHA1_LIST))
    assert find_template_digest_mismatches(log.entries) == ()
    assert (
        replay_ima(log.entries, "sha1").hex()
        == EXPECTED[SHA1_LIST]["expected"]["values"]["sha1"]["10"]
    )


def test_swapped_file_hash_with_stale_template_digest_is_detected() -> None:
    data, original = _tampered_sha1_list(recompute_template_digest=False)
    log = parse_ima(data)
    (bad,) = find_template_digest_mismatches(log.entries)
    assert bad.index == TAMPERED and bad.path == original.path
    assert bad.file_hash == sha1(b"malware").digest()
    # the recorded sha1 digests still replay to the real PCR: only the check catches it
    expected = EXPECTED[SHA1_LIST]["expected"]["values"]["sha1"]["10"]
    assert replay_ima(log.entries, "sha1").hex() == expected


def test_swapped_file_hash_with_recomputed_template_digest_fails_the_replay() -> None:
    data, _ = _tampered_sha1_list(recompute_template_digest=True)
    log = parse_ima(data)
    assert find_template_digest_mismatches(log.entries) == ()
    expected = EXPECTED[SHA1_LIST]["expected"]["values"]["sha1"]["10"]
    assert replay_ima(log.entries, "sha1").hex() != expected


def test_ascii_line_with_a_swapped_file_hash_is_detected() -> None:
    text = read_list(ASCII_LIST)
    log = parse_ima(text)
    entry = log.entries[5]
    assert entry.file_hash is not None
    forged = text.replace(
        entry.file_hash.hex().encode(), hashlib.sha256(b"evil").hexdigest().encode()
    )
    assert [e.index for e in find_template_digest_mismatches(parse_ima(forged).entries)] == [5]


def test_violations_are_not_template_digest_mismatches() -> None:
    log = parse_ima_binary(binary_entry("ima-ng", VIOLATION_DATA, violation=True))
    assert log.entries[0].is_violation
    assert find_template_digest_mismatches(log.entries) == ()


# --------------------------------------------------------------------------
# boot_aggregate.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dump"),
    [
        (SHA1_LIST, "imaverify_vm_pcrs_sha1.txt"),
        (SHA1_LIST, "imaverify_vm_800ce6c_pcrs_sha1.txt"),
        (SHA256_LIST, "imaverify_vm_pcrs_sha256.txt"),
        (ASCII_LIST, "imaverify_vm_e5460c7_pcrs.txt"),
    ],
)
def test_boot_aggregate_entry_matches_the_pcr_dump(name: str, dump: str) -> None:
    entry = parse_ima(read_list(name)).boot_aggregate_entry
    assert entry is not None
    bank = boot_aggregate_bank(entry)
    pcrs = read_pcr_dump(IMA_DIR / dump)[bank]
    assert boot_aggregate(pcrs, bank) == entry.file_hash
    assert check_boot_aggregate(entry, pcrs)
    tampered = dict(pcrs)
    tampered[7] = bytes(len(pcrs[7]))
    assert not check_boot_aggregate(entry, tampered)


def test_boot_aggregate_rule_sha1_uses_pcr0_7_other_banks_pcr0_9() -> None:
    bank1 = {i: bytes([i]) * 20 for i in range(8)}
    assert boot_aggregate(bank1, "sha1") == sha1(b"".join(bank1[i] for i in range(8))).digest()
    assert boot_aggregate({**bank1, 8: b"\x09" * 20}, "sha1") == boot_aggregate(bank1, "sha1")
    bank256 = {i: bytes([i]) * 32 for i in range(10)}
    assert (
        boot_aggregate(bank256, "sha256")
        == hashlib.sha256(b"".join(bank256[i] for i in range(10))).digest()
    )
    del bank256[9]
    with pytest.raises(ImaBootAggregateError, match="needs PCR 9"):
        boot_aggregate(bank256, "sha256")
    with pytest.raises(ImaBootAggregateError, match="PCR 0 is 20 bytes"):
        boot_aggregate({**bank1, 0: b"\x00" * 20}, "sha256")
    with pytest.raises(ImaUnsupportedAlgorithmError):
        boot_aggregate(bank1, "md5")


def test_boot_aggregate_bank_refuses_other_entries() -> None:
    data = td(d_ng("sha256", FILE), n_ng("boot_aggregate"))
    (entry,) = parse_ima_binary(binary_entry("ima-ng", data)).entries
    assert boot_aggregate_bank(entry) == "sha256"
    (other,) = parse_ima_binary(binary_entry("ima-ng", DATA)).entries
    with pytest.raises(ImaBootAggregateError, match="not a boot_aggregate"):
        boot_aggregate_bank(other)
    weird = td(d_ng("md5", bytes(16)), n_ng("boot_aggregate"))
    (md5,) = parse_ima_binary(binary_entry("ima-ng", weird)).entries
    with pytest.raises(ImaBootAggregateError, match="md5"):
        check_boot_aggregate(md5, {})


def test_sm3_boot_aggregate_uses_the_sm3_256_bank() -> None:
    data = td(d_ng("sm3", bytes(32)), n_ng("boot_aggregate"))
    (entry,) = parse_ima_binary(binary_entry("ima-ng", data)).entries
    assert boot_aggregate_bank(entry) == "sm3_256"


def _firmware_replay() -> dict[str, dict[int, bytes]]:
    from soapattest.tpm.eventlog.parser import parse_event_log
    from soapattest.tpm.eventlog.replay import replay

    return replay(parse_event_log(FIRMWARE_LOG.read_bytes()))


def test_boot_aggregate_matches_the_firmware_log_replay() -> None:
    pcrs = _firmware_replay()
    bank = "sha256"
    values = {i: pcrs[bank].get(i, bytes(32)) for i in range(10)}
    for name in (SHA256_LIST, ASCII_LIST):
        entry = parse_ima(read_list(name)).boot_aggregate_entry
        assert entry is not None and boot_aggregate_bank(entry) == bank
        assert check_boot_aggregate(entry, values)
    dump = read_pcr_dump(IMA_DIR / "imaverify_vm_pcrs_sha256.txt")["sha256"]
    assert all(values[i] == dump[i] for i in range(10))


def test_ima_pcr_is_10() -> None:
    assert IMA_PCR == 10
    entry = parse_ima_binary(binary_entry("ima-ng", DATA)).entries[0]
    assert replay_ima([entry], "sha1") != bytes(20)
    assert replay_ima([entry], "sha1", pcr=11) == bytes(20)
    assert struct.unpack("<I", binary_entry("ima-ng", DATA)[:4]) == (IMA_PCR,)
