"""Boot planning of simulated hosts (pure: no swtpm needed).

Checked against the project's own replay code: extending the plan's digests
from the right initial values gives exactly ``replay()`` of the served log
(or, for the "pcr" tamper mode, differs from it in PCR 4 only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest

from soapattest.errors import UnsupportedSimLogError
from soapattest.sim.boot import BootPlan, plan_boot, plan_ima, tamper_target
from soapattest.sim.catalog import bundled_files, load_log, resolve, unsupported_reason
from soapattest.tpm.constants import HASH_BY_NAME
from soapattest.tpm.eventlog import EventLog, initial_pcr_value, parse_event_log, replay
from soapattest.tpm.ima import parse_ima, replay_ima
from tests.conftest import EVENTLOG_DIR, IMA_DIR

SIMULATABLE = sorted(
    p.name for p in EVENTLOG_DIR.glob("*.bin")
    if unsupported_reason(parse_event_log(p.read_bytes())) is None
)


def play(log: EventLog, extends: Iterable[tuple[int, Mapping[str, bytes]]]
         ) -> dict[str, dict[int, bytes]]:
    """What a TPM holds after the extends, starting from the log's initial PCR values."""
    out: dict[str, dict[int, bytes]] = {b: {} for b in log.banks}
    for pcr, digests in extends:
        for bank, digest in digests.items():
            old = out[bank].get(pcr, initial_pcr_value(log, bank, pcr))
            out[bank][pcr] = HASH_BY_NAME[bank].digest(old + digest)
    return out


def plan(name: str, tamper: str | None) -> tuple[BootPlan, EventLog, bytes]:
    log_name, raw, log = load_log(EVENTLOG_DIR / name)
    return plan_boot(log_name, raw, log, tamper), log, raw


def test_most_real_logs_are_simulatable() -> None:
    assert len(SIMULATABLE) >= 25


@pytest.mark.parametrize("name", SIMULATABLE)
def test_plan_replays_to_the_log(name: str) -> None:
    p, log, raw = plan(name, None)
    assert p.served_log == raw and p.tampered_event is None
    assert p.banks == log.banks
    assert p.startup_locality == (log.startup_locality or 0)
    assert play(log, p.extends) == replay(log)


@pytest.mark.parametrize("name", SIMULATABLE)
def test_tamper_event_mode(name: str) -> None:
    p, log, raw = plan(name, "event")
    served = parse_event_log(p.served_log)
    assert len(p.served_log) == len(raw)
    changed = [e.index for e, o in zip(served.events, log.events, strict=True) if e != o]
    assert changed == [p.tampered_event]
    assert play(log, p.extends) == replay(served)


@pytest.mark.parametrize("name", SIMULATABLE[:6])
def test_tamper_pcr_mode_differs_in_pcr4_only(name: str) -> None:
    p, log, raw = plan(name, "pcr")
    assert p.served_log == raw
    got, expected = play(log, p.extends), replay(log)
    assert {(b, i) for b in got for i in got[b] if got[b][i] != expected[b][i]} == {
        (b, 4) for b in log.banks}


def test_tamper_target_prefers_the_boot_loader() -> None:
    _, _, log = load_log(EVENTLOG_DIR / "gotpmtools_rhel8-uefi.bin")
    target = tamper_target(log)
    assert target is not None and (target.pcr, target.untrusted_type) == (4, 0x80000003)
    _, _, vm = load_log(EVENTLOG_DIR / "imaverify_vm_binary_bios_measurements.bin")
    fallback = tamper_target(vm)  # this VM log has no boot services application event
    assert fallback is not None and fallback.pcr == 4


def test_unknown_tamper_mode_refused() -> None:
    with pytest.raises(ValueError, match="tamper mode"):
        plan("gotpmtools_rhel8-uefi.bin", "both")


@pytest.mark.parametrize(("ima_name", "banks"), [
    ("imaverify_vm_binary_runtime_measurements_sha256", ("sha256",)),
    ("imaverify_vm_binary_runtime_measurements_sha1", ("sha1", "sha256")),
])
def test_ima_plan_matches_ima_replay(ima_name: str, banks: tuple[str, ...]) -> None:
    raw = (IMA_DIR / ima_name).read_bytes()
    alg, extends = plan_ima(raw, banks)
    assert alg == ("sha256" if ima_name.endswith("sha256") else "sha1")
    entries = parse_ima(raw).entries
    for bank in banks:
        value = bytes(HASH_BY_NAME[bank].digest_size)
        for pcr, digests in extends:
            assert pcr == 10
            value = HASH_BY_NAME[bank].digest(value + digests[bank])
        assert value == replay_ima(entries, bank)


def test_bundled_files_match_the_manifest_and_test_data() -> None:
    import csv
    import hashlib

    from soapattest.sim.catalog import MANIFEST

    rows = list(csv.DictReader(MANIFEST.open(encoding="utf-8"), delimiter="\t"))
    files = {f.path.name: f for f in bundled_files()}
    assert sorted(files) == sorted(r["filename"] for r in rows)
    for r in rows:
        data = files[r["filename"]].path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"] and len(data) == int(r["size"])
        # the bundled copy is byte-identical to the project's test data it came from
        src = EVENTLOG_DIR.parent / r["copied_from"]
        assert src.read_bytes() == data
    for f in files.values():
        if f.kind == "eventlog":
            assert resolve(f.name) == (f.name, f.path)
    with pytest.raises(UnsupportedSimLogError, match="neither"):
        resolve("no-such-log")
