"""appraise(): quotes + real event logs + whitelists + policies -> trust reports.

Hosts are software AKs over PCRs extended from real firmware logs (the
swtpm-backed version of these scenarios is in tests/integration).
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from soapattest.errors import PolicyError
from soapattest.model import (
    CheckStatus,
    Combine,
    EntryKind,
    Policy,
    SecureBootRequirements,
    TrustStatus,
    Whitelist,
    WhitelistEntry,
    WhitelistRef,
)
from soapattest.testing.unsafe_soft_tpm import UnsafeSoftTpm
from soapattest.tpm.eventlog import EventLog, EventType, parse_event_log
from soapattest.verify.appraise import (
    AppraisalInput,
    Evidence,
    appraise,
    required_selection,
    unknown_report,
    validate_policy,
)
from tests.conftest import EVENTLOG_DIR
from tests.logtools import event, replace_event, serialize, with_events

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
UBUNTU = "gotpmtools_ubuntu-2404-amd-sevsnp.bin"  # Secure Boot disabled
MOK = "tpm2tools_event-moklisttrusted.bin"  # Secure Boot enabled, sha256 only


class Host:
    """A software-AK host booted from a real log."""

    def __init__(self, name: str, raw: bytes | None = None) -> None:
        self.raw = raw if raw is not None else (EVENTLOG_DIR / name).read_bytes()
        self.log: EventLog = parse_event_log(self.raw)
        banks = tuple(b for b in self.log.banks if b in ("sha1", "sha256", "sha384"))
        self.tpm = UnsafeSoftTpm(banks=banks)
        self.tpm.boot(self.log)

    def reboot_with(self, raw: bytes, *, extend_log: EventLog | None = None) -> None:
        """Serve ``raw``; extend the PCRs from ``extend_log`` (default: the served log)."""
        self.raw = raw
        self.log = parse_event_log(raw)
        self.tpm.boot(extend_log or self.log)


def golden(host: Host, name: str = "golden", *, pcrs: range = range(8), bank: str = "sha256",
           kinds: tuple[EntryKind, ...] = (EntryKind.EVENT,)) -> Whitelist:
    entries: set[WhitelistEntry] = set()
    for ev in host.log.events:
        if ev.extends and ev.pcr in pcrs and EntryKind.EVENT in kinds:
            entries.add(WhitelistEntry(EntryKind.EVENT, bank, ev.pcr, ev.digests[bank]))
    if EntryKind.PCR in kinds:
        for pcr in pcrs:
            entries.add(WhitelistEntry(EntryKind.PCR, bank, pcr, host.tpm.pcrs[bank][pcr]))
    return Whitelist(name=name, version=1, entries=tuple(sorted(entries)))


def policy(*wls: Whitelist, combine: Combine = Combine.ALL_OF, **kw: object) -> Policy:
    return Policy(
        name="p",
        version=1,
        combine=combine,
        whitelists=tuple(WhitelistRef(w.name) for w in wls),
        **kw,  # type: ignore[arg-type]
    )


def attest(host: Host, pol: Policy, wls: tuple[Whitelist, ...], *, nonce: bytes | None = None,
           quoted_nonce: bytes | None = None, event_log: bytes | None = b"default") -> object:
    nonce = nonce or os.urandom(32)
    selection = required_selection(pol, wls)
    quote = host.tpm.quote(quoted_nonce or nonce, selection)
    evidence = Evidence(quote=quote, event_log=host.raw if event_log == b"default" else event_log)
    inp = AppraisalInput(
        host="h1", ak=host.tpm.ak, nonce=nonce, policy=pol, whitelists=wls, now=NOW,
        qualified_signer=host.tpm.qualified_signer,
    )
    return appraise(evidence, inp).report


def failing(report: object) -> list[str]:
    return [f"{c.id}: {c.reason}" for c in report.checks if c.status is CheckStatus.FAIL]  # type: ignore[attr-defined]


def test_known_good_host_is_trusted_on_events_and_pcr_values() -> None:
    host = Host(UBUNTU)
    wl = golden(host, kinds=(EntryKind.EVENT, EntryKind.PCR))
    report = attest(host, policy(wl), (wl,))
    assert report.status is TrustStatus.TRUSTED, failing(report)
    assert report.pcrs["sha256"][4] == host.tpm.pcrs["sha256"][4]
    assert {"quote", "eventlog", "whitelist:golden"} <= set(report.components())


def test_tampered_bootloader_event_is_named() -> None:
    host = Host(UBUNTU)
    wl = golden(host)
    app = next(e for e in host.log.events
               if e.pcr == 4 and e.untrusted_type == EventType.EV_EFI_BOOT_SERVICES_APPLICATION)
    evil = replace_event(app, digests={b: os.urandom(len(d)) for b, d in app.digests.items()})
    events = [evil if e.index == app.index else e for e in host.log.events]
    host.reboot_with(serialize(host.log, events))
    report = attest(host, policy(wl), (wl,))
    assert report.status is TrustStatus.UNTRUSTED
    bad = [c for c in report.checks if c.status is CheckStatus.FAIL]
    assert [c.id for c in bad] == ["whitelist.event"]
    assert bad[0].event_index == app.index and bad[0].pcr == 4
    assert f"event {app.index} EV_EFI_BOOT_SERVICES_APPLICATION" in bad[0].reason
    assert "is not in whitelist 'golden'" in bad[0].reason


def test_log_that_does_not_replay_is_untrusted_with_events_listed() -> None:
    host = Host(UBUNTU)
    wl = golden(host)
    original = host.raw
    app = next(e for e in host.log.events if e.pcr == 4 and e.extends and e.index > 10)
    evil = replace_event(app, digests={b: os.urandom(len(d)) for b, d in app.digests.items()})
    _, tampered = with_events(host.log, [evil if e.index == app.index else e
                                         for e in host.log.events])
    host.reboot_with(original, extend_log=tampered)  # PCRs tampered, log served pristine
    report = attest(host, policy(wl), (wl,))
    assert report.status is TrustStatus.UNTRUSTED
    replay = [c for c in report.checks if c.id == "eventlog.replay" and c.pcr == 4]
    assert replay[0].status is CheckStatus.FAIL
    assert f"{app.index} {app.type_name}" in replay[0].reason
    wl_fail = [c for c in report.checks if c.id == "whitelist.event" and c.pcr == 4]
    assert wl_fail[0].status is CheckStatus.FAIL
    assert "does not vouch" in wl_fail[0].reason


def test_pcr_value_whitelist_mismatch_fails_and_match_passes() -> None:
    host = Host(UBUNTU)
    wl = golden(host, kinds=(EntryKind.PCR,), pcrs=range(0, 1))
    assert attest(host, policy(wl), (wl,)).status is TrustStatus.TRUSTED
    host.tpm.extend(0, {b: os.urandom(len(v[0])) for b, v in host.tpm.pcrs.items()})
    report = attest(host, policy(wl, use_event_log=False), (wl,))
    assert report.status is TrustStatus.UNTRUSTED
    assert [c.id for c in report.checks if c.status is CheckStatus.FAIL] == ["whitelist.pcr"]


def test_missing_event_log_is_unknown_not_trusted() -> None:
    host = Host(UBUNTU)
    wl = golden(host)
    report = attest(host, policy(wl), (wl,), event_log=None)
    assert report.status is TrustStatus.UNTRUSTED  # event entries cannot be matched
    checks = {c.id: c.status for c in report.checks}
    assert checks["eventlog.parse"] is CheckStatus.ERROR


def test_pcr_only_policy_does_not_need_the_log() -> None:
    host = Host(UBUNTU)
    wl = golden(host, kinds=(EntryKind.PCR,))
    report = attest(host, policy(wl, use_event_log=False), (wl,), event_log=None)
    assert report.status is TrustStatus.TRUSTED, failing(report)


def test_wrong_nonce_makes_everything_untrusted() -> None:
    host = Host(UBUNTU)
    wl = golden(host)
    report = attest(host, policy(wl), (wl,), quoted_nonce=os.urandom(32))
    assert report.status is TrustStatus.UNTRUSTED
    assert report.pcrs == {}
    assert "quote.nonce" in [c.id for c in report.checks if c.status is CheckStatus.FAIL]


def test_any_of_is_satisfied_by_one_whitelist() -> None:
    host = Host(UBUNTU)
    good = golden(host, "good")
    other = golden(Host(MOK), "other")
    report = attest(host, policy(other, good, combine=Combine.ANY_OF), (other, good))
    assert report.status is TrustStatus.TRUSTED, failing(report)
    assert any(c.id == "policy.any_of" and c.status is CheckStatus.PASS for c in report.checks)
    assert any(c.status is CheckStatus.INFO and "not required" in c.reason for c in report.checks)


def test_any_of_with_no_satisfied_whitelist_is_untrusted() -> None:
    host = Host(UBUNTU)
    other = golden(Host(MOK), "other")
    report = attest(host, policy(other, combine=Combine.ANY_OF), (other,))
    assert report.status is TrustStatus.UNTRUSTED
    assert "policy.any_of" in [c.id for c in report.checks if c.status is CheckStatus.FAIL]


def test_all_of_needs_every_whitelist() -> None:
    host = Host(UBUNTU)
    good = golden(host, "good")
    other = golden(Host(MOK), "other")
    assert attest(host, policy(good), (good,)).status is TrustStatus.TRUSTED
    report = attest(host, policy(good, other), (good, other))
    assert report.status is TrustStatus.UNTRUSTED


def test_whitelist_without_the_policy_bank_is_refused() -> None:
    host = Host(UBUNTU)
    sha1_only = golden(host, bank="sha1")
    with pytest.raises(PolicyError):
        validate_policy(policy(sha1_only), (sha1_only,))
    validate_policy(policy(sha1_only, banks=("sha1",)), (sha1_only,))


def test_empty_policy_is_refused() -> None:
    with pytest.raises(PolicyError):
        validate_policy(policy(), ())


def test_secure_boot_enabled_host_passes_and_disabled_host_fails() -> None:
    req = SecureBootRequirements(require_enabled=True)
    on = Host(MOK)
    wl = golden(on)
    report = attest(on, policy(wl, secure_boot=req), (wl,))
    assert report.status is TrustStatus.TRUSTED, failing(report)
    assert report.components()["secureboot"] is TrustStatus.TRUSTED
    off = Host(UBUNTU)
    wl_off = golden(off)
    report = attest(off, policy(wl_off, secure_boot=req), (wl_off,))
    assert report.status is TrustStatus.UNTRUSTED
    assert "Secure Boot is disabled" in failing(report)[0]


def test_secure_boot_authority_and_dbx_requirements() -> None:
    host = Host(MOK)
    wl = golden(host)
    from soapattest.verify.secureboot import secure_boot_state

    state = secure_boot_state(tuple(e for e in host.log.events if e.pcr == 7 and e.extends))
    assert state.enabled is True and not state.problems
    fingerprints = tuple(a.fingerprint for a in state.authorities)
    good = SecureBootRequirements(
        allowed_authorities=fingerprints, dbx_must_contain=tuple(state.dbx_hashes)
    )
    assert attest(host, policy(wl, secure_boot=good), (wl,)).status is TrustStatus.TRUSTED
    bad = replace(good, allowed_authorities=fingerprints[1:], dbx_must_contain=(os.urandom(32),))
    report = attest(host, policy(wl, secure_boot=bad), (wl,))
    assert report.status is TrustStatus.UNTRUSTED
    assert {c.split(":")[0] for c in failing(report)} == {
        "secureboot.authority",
        "secureboot.dbx",
    }


def _pcr7_variant(host: Host, mutate: object) -> Host:
    events = list(host.log.events)
    mutate(events)  # type: ignore[operator]
    raw = serialize(host.log, events)
    host.reboot_with(raw)
    return host


def _sb_policy(host: Host) -> tuple[Policy, Whitelist]:
    wl = golden(host, pcrs=range(0, 7))
    return policy(wl, secure_boot=SecureBootRequirements()), wl


@pytest.mark.parametrize(
    ("pcr", "old", "new", "message"),
    [
        (7, EventType.EV_EFI_VARIABLE_DRIVER_CONFIG, EventType.EV_EFI_ACTION, "unknown action"),
        (7, EventType.EV_EFI_VARIABLE_DRIVER_CONFIG, EventType.EV_EFI_VARIABLE_AUTHORITY,
         "Secure Boot is not measured"),
        (4, EventType.EV_EFI_BOOT_SERVICES_APPLICATION, EventType.EV_EFI_ACTION,
         "the label is false"),
        (4, EventType.EV_EFI_BOOT_SERVICES_APPLICATION, EventType.EV_SEPARATOR,
         "labelled EV_SEPARATOR"),
    ],
)
def test_retyped_event_still_replays_but_fails(pcr: int, old: int, new: int, message: str) -> None:
    host = Host(MOK)
    wl = golden(host)
    pol = policy(wl, secure_boot=SecureBootRequirements())
    assert attest(host, pol, (wl,)).status is TrustStatus.TRUSTED  # positive twin

    def retype(events: list) -> None:
        i = next(k for k, e in enumerate(events) if e.pcr == pcr and e.untrusted_type == old)
        events[i] = replace_event(events[i], untrusted_type=new)

    report = attest(_pcr7_variant(host, retype), pol, (wl,))
    assert report.status is TrustStatus.UNTRUSTED
    assert any(message in f for f in failing(report)), failing(report)


@pytest.mark.parametrize("abuse", ["variable-after-separator", "duplicate-separator",
                                   "separator-not-zero", "missing-separator"])
def test_separator_abuse_fails(abuse: str) -> None:
    host = Host(MOK)
    pol, wl = _sb_policy(host)

    def mutate(events: list) -> None:
        sep = next(k for k, e in enumerate(events)
                   if e.pcr == 7 and e.untrusted_type == EventType.EV_SEPARATOR)
        if abuse == "variable-after-separator":
            config = EventType.EV_EFI_VARIABLE_DRIVER_CONFIG
            var = next(e for e in events if e.pcr == 7 and e.untrusted_type == config)
            events.insert(sep + 1, replace_event(var))
            events.remove(var)
        elif abuse == "missing-separator":
            del events[sep]
        elif abuse == "duplicate-separator":
            events.insert(sep + 1, replace_event(events[sep]))
        else:
            events[sep] = event(host.log, 7, EventType.EV_SEPARATOR, b"\x02\x00\x00\x00")

    report = attest(_pcr7_variant(host, mutate), pol, (wl,))
    assert report.status is TrustStatus.UNTRUSTED
    failures = failing(report)
    assert any(f.startswith(("secureboot.events", "eventlog.separator")) for f in failures)


def test_events_in_unquoted_pcrs_are_ignored_not_trusted() -> None:
    host = Host(UBUNTU)
    wl = golden(host, pcrs=range(0, 5))
    report = attest(host, policy(wl), (wl,))
    assert report.status is TrustStatus.TRUSTED, failing(report)
    ignored = [c for c in report.checks if c.id == "eventlog.unquoted"]
    assert {c.pcr for c in ignored} >= {5, 7}
    assert all(c.status is CheckStatus.INFO for c in ignored)


def test_unknown_report_is_unknown() -> None:
    report = unknown_report("h1", "agent.reachable", "connection refused", NOW)
    assert report.status is TrustStatus.UNKNOWN
    assert report.checks[0].status is CheckStatus.ERROR


def _self_consistent_pcrs(log: EventLog) -> range | list[int]:
    """PCRs a golden whitelist of this (possibly trimmed) test log can cover.

    Several logs in the data set are excerpts (go-attestation test fixtures)
    without the separators a complete boot has in PCR 0-7; those PCRs would
    rightly fail the separator rule, so the self-consistency test leaves them out.
    """
    extended = sorted({e.pcr for e in log.events if e.extends})
    seps = [e.pcr for e in log.events if e.untrusted_type == EventType.EV_SEPARATOR]
    return [p for p in extended if p >= 8 or seps.count(p) == 1]


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTLOG_DIR.glob("*.bin")))
def test_every_real_log_appraises_trusted_against_its_own_golden_values(name: str) -> None:
    host = Host(name)
    bank = "sha256" if "sha256" in host.log.banks else "sha1"
    pcrs = _self_consistent_pcrs(host.log)
    if not pcrs:
        assert name == "goattest_short_no_action.bin"  # one event, extends nothing
        return
    wl = golden(host, bank=bank, pcrs=pcrs, kinds=(EntryKind.EVENT, EntryKind.PCR))  # type: ignore[arg-type]
    report = attest(host, policy(wl, banks=(bank,)), (wl,))
    assert report.status is TrustStatus.TRUSTED, failing(report)


def test_components_leave_out_observation_only_groups() -> None:
    host = Host(UBUNTU)
    wl = golden(host)
    components = attest(host, policy(wl), (wl,)).components()
    assert "policy" not in components  # only an INFO check describes the policy
    assert components["quote"] is TrustStatus.TRUSTED


def test_per_pcr_passes_are_folded_but_failures_stay_individual() -> None:
    from soapattest.verify.checks import pcr_ranges

    assert pcr_ranges([0, 1, 2, 4, 6, 7]) == "0-2, 4, 6-7"
    host = Host(UBUNTU)
    wl = golden(host, kinds=(EntryKind.EVENT, EntryKind.PCR))
    good = attest(host, policy(wl), (wl,))
    replays = [c for c in good.checks if c.id == "eventlog.replay"]
    assert len(replays) == 1 and replays[0].reason.startswith("PCRs 0-7 (sha256)")
    host.tpm.extend(4, {b: os.urandom(len(v[0])) for b, v in host.tpm.pcrs.items()})
    bad = attest(host, policy(wl), (wl,))
    replays = [c for c in bad.checks if c.id == "eventlog.replay"]
    assert [c.status.value for c in replays] == ["PASS", "FAIL"]
    assert replays[0].reason.startswith("PCRs 0-3, 5-7 (sha256)")
    assert replays[1].pcr == 4
