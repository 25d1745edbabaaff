"""The engine's fast paths and memos give exactly the results of the plain paths.

- ``evaluate_quote`` decides passing quotes without per-step bookkeeping
  (``_evaluate_passing``); its result must equal the step-by-step path's.
- Memos (event-label verdicts, recurring passing checks, policy and
  whitelist indexes, AK acceptance, parsed AK publics) map exact inputs to
  results: an appraisal with cold memos and one with warm memos are equal,
  and a memo never answers for different inputs.
- The row-level accessors of :class:`EventLog` agree with its events.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from soapattest.errors import TpmFormatError
from soapattest.model import (
    CheckStatus,
    Combine,
    EntryKind,
    Policy,
    QuoteState,
    TrustStatus,
    Whitelist,
    WhitelistEntry,
    WhitelistRef,
)
from soapattest.testing.unsafe_soft_tpm import UnsafeSoftTpm
from soapattest.tpm.eventlog import (
    STRICT_TYPES,
    EventLog,
    EventType,
    digest_contradicts_data,
    digest_verified,
    parse_event_log,
)
from soapattest.tpm.pcr import PcrSelection
from soapattest.tpm.public import parse_public
from soapattest.verify import quote as quote_mod
from soapattest.verify.appraise import AppraisalInput, Evidence, appraise, required_selection
from soapattest.verify.checks import clear_memos
from soapattest.verify.eventlog import appraise_event_log
from soapattest.verify.quote import QuoteExpectations
from tests.conftest import EVENTLOG_DIR
from tests.logtools import event, replace_event, serialize

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LOGS = sorted(p.name for p in EVENTLOG_DIR.glob("*.bin"))
UBUNTU = "gotpmtools_ubuntu-2404-amd-sevsnp.bin"
MOK = "tpm2tools_event-moklisttrusted.bin"


def _host(name: str, key_type: str = "ecc") -> tuple[bytes, EventLog, UnsafeSoftTpm]:
    raw = (EVENTLOG_DIR / name).read_bytes()
    log = parse_event_log(raw)
    banks = tuple(b for b in log.banks if b in ("sha1", "sha256", "sha384"))
    tpm = UnsafeSoftTpm(key_type=key_type, banks=banks)
    tpm.boot(log)
    return raw, log, tpm


def _golden(log: EventLog, tpm: UnsafeSoftTpm, bank: str) -> Whitelist:
    pcrs = sorted({e.pcr for e in log.events if e.extends}) or [0]
    entries = {
        WhitelistEntry(EntryKind.EVENT, bank, e.pcr, e.digests[bank])
        for e in log.events
        if e.extends and bank in e.digests
    }
    entries |= {WhitelistEntry(EntryKind.PCR, bank, p, tpm.pcrs[bank][p]) for p in pcrs}
    return Whitelist(name="golden", version=1, entries=tuple(sorted(entries)))


def _policy(wl: Whitelist, bank: str) -> Policy:
    return Policy(
        name="p",
        version=1,
        combine=Combine.ALL_OF,
        whitelists=(WhitelistRef(wl.name, wl.version),),
        banks=(bank,),
    )


# --------------------------------------------------------------------------
# evaluate_quote: fast path == step-by-step path
# --------------------------------------------------------------------------


def _states(tpm: UnsafeSoftTpm) -> list[QuoteState | None]:
    now = QuoteState(
        clock=tpm.clock,
        reset_count=tpm.reset_count,
        restart_count=tpm.restart_count,
        firmware_version=tpm.firmware_version,
        safe=True,
    )
    return [
        None,
        replace(now, clock=now.clock - 5),
        replace(now, reset_count=now.reset_count - 1),  # reboot: INFO note
        replace(now, restart_count=0, clock=1),
        replace(now, firmware_version=1),  # firmware change: INFO note
        replace(now, clock=now.clock + 10**6),  # regression: no fast path
    ]


@pytest.mark.parametrize("key_type", ["ecc", "rsa"])
@pytest.mark.parametrize("name", [UBUNTU, MOK, "gotpmtools_glinux-alex.bin"])
def test_fast_and_step_paths_agree_on_every_quote(name: str, key_type: str) -> None:
    _, _, tpm = _host(name, key_type)
    bank = "sha256" if "sha256" in tpm.banks else tpm.banks[0]
    selection = PcrSelection.from_mapping({b: range(10) for b in tpm.banks})
    nonce = os.urandom(32)
    for previous in _states(tpm):
        ev = tpm.quote(nonce, selection)
        tpm.clock -= 10  # the same clock for every quote: the states stay comparable
        for required in (None, PcrSelection.from_mapping({bank: [0, 4, 7]})):
            for qs in (b"", tpm.qualified_signer):
                exp = QuoteExpectations(
                    nonce=nonce, required=required, previous=previous, qualified_signer=qs
                )
                fast = quote_mod._evaluate_passing(ev, tpm.ak, exp)
                slow = quote_mod._evaluate_steps(ev, tpm.ak, exp)
                if fast is None:
                    assert slow.verified is None  # the fast path gives up only on failures
                    assert previous is not None and previous.clock > tpm.clock
                    continue
                assert fast == slow
                assert fast.verified is not None and fast.error is None


@pytest.mark.parametrize(
    "breaks",
    ["signature", "nonce", "signer", "drop", "extra", "value", "attest", "scheme"],
)
def test_fast_path_gives_up_on_every_failure(breaks: str) -> None:
    _, _, tpm = _host(UBUNTU)
    selection = PcrSelection.from_mapping({"sha256": range(8)})
    nonce = os.urandom(32)
    ev = tpm.quote(nonce, selection)
    exp = QuoteExpectations(nonce=nonce, qualified_signer=tpm.qualified_signer)
    assert quote_mod._evaluate_passing(ev, tpm.ak, exp) is not None  # positive twin
    pcrs = {b: dict(v) for b, v in ev.raw_pcrs.items()}
    ak = tpm.ak
    if breaks == "signature":
        ev = replace(ev, signature=ev.signature[:-1] + bytes([ev.signature[-1] ^ 1]))
    elif breaks == "nonce":
        exp = replace(exp, nonce=os.urandom(32))
    elif breaks == "signer":
        exp = replace(exp, qualified_signer=tpm.qualified_signer[:2] + bytes(32))
    elif breaks == "drop":
        del pcrs["sha256"][7]
    elif breaks == "extra":
        pcrs["sha256"][9] = bytes(32)
    elif breaks == "value":
        pcrs["sha256"][7] = bytes(32)
    elif breaks == "attest":
        ev = replace(ev, attest=ev.attest + b"\0")
    else:
        ak = UnsafeSoftTpm(key_type="rsa").ak
    ev = replace(ev, raw_pcrs=pcrs)
    assert quote_mod._evaluate_passing(ev, ak, exp) is None
    result = quote_mod.evaluate_quote(ev, ak, exp)
    assert result.verified is None
    assert any(c.status is CheckStatus.FAIL for c in result.checks)


# --------------------------------------------------------------------------
# Memos: cold == warm, and never an answer for other inputs
# --------------------------------------------------------------------------


def _appraise(raw: bytes, tpm: UnsafeSoftTpm, pol: Policy, wls: tuple[Whitelist, ...]) -> object:
    nonce = os.urandom(32)
    quote = tpm.quote(nonce, required_selection(pol, wls))
    tpm.clock -= 10
    inp = AppraisalInput(
        host="h", ak=tpm.ak, nonce=nonce, policy=pol, whitelists=wls, now=NOW,
        qualified_signer=tpm.qualified_signer,
    )
    return Evidence(quote=quote, event_log=raw), inp


@pytest.mark.parametrize("name", LOGS)
def test_cold_and_warm_memos_give_the_same_report(name: str) -> None:
    raw, log, tpm = _host(name)
    bank = "sha256" if "sha256" in tpm.banks else tpm.banks[0]
    wl = _golden(log, tpm, bank)
    pol = _policy(wl, bank)
    evidence, inp = _appraise(raw, tpm, pol, (wl,))
    clear_memos()
    cold = appraise(evidence, inp).report  # type: ignore[arg-type]
    warm = appraise(evidence, inp).report  # type: ignore[arg-type]
    assert cold == warm
    # and equal to an appraisal with equal but distinct policy and whitelist objects
    wl2 = replace(wl)
    other = appraise(evidence, replace(inp, policy=replace(pol), whitelists=(wl2,))).report  # type: ignore[arg-type]
    assert other == cold


def test_label_memo_does_not_answer_for_other_data() -> None:
    """Same type and digests, other data: the verdict is recomputed (the label is false)."""
    raw, log, tpm = _host(MOK)
    sep = next(e for e in log.events if e.untrusted_type == EventType.EV_SEPARATOR)
    bank = "sha256"
    # warm the memo with the truthful separator
    assert appraise_event_log(raw, {bank: dict(enumerate(tpm.pcrs[bank]))}, [bank]).checks
    # the same digests over other data: the digests still replay, the label lies
    lying = replace_event(sep, data=b"\x00\x00\x00\x02")
    events = [lying if e.index == sep.index else e for e in log.events]
    raw2 = serialize(log, events)
    log2 = parse_event_log(raw2)
    assert [e.digests for e in log2.events] == [e.digests for e in log.events]
    found = appraise_event_log(raw2, {bank: dict(enumerate(tpm.pcrs[bank]))}, [bank])
    failures = {(c.id, c.event_index) for c in found.checks if c.status is CheckStatus.FAIL}
    assert ("eventlog.event_type", sep.index) in failures
    assert ("eventlog.separator", sep.index) in failures


def test_recurring_checks_are_shared_but_equal_to_fresh_ones() -> None:
    raw, log, tpm = _host(UBUNTU)
    wl = _golden(log, tpm, "sha256")
    pol = _policy(wl, "sha256")
    evidence, inp = _appraise(raw, tpm, pol, (wl,))
    first = appraise(evidence, inp).report  # type: ignore[arg-type]
    second = appraise(evidence, inp).report  # type: ignore[arg-type]
    assert first.status is TrustStatus.TRUSTED
    assert first.checks == second.checks
    shared = sum(a is b for a, b in zip(first.checks, second.checks, strict=True))
    assert shared >= len(first.checks) // 2  # the memos do serve the recurring checks


# --------------------------------------------------------------------------
# Row accessors of EventLog agree with its events
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", LOGS)
def test_row_accessors_agree_with_events(name: str) -> None:
    raw = (EVENTLOG_DIR / name).read_bytes()
    log = parse_event_log(raw)
    events = log.events
    extending = [e for e in events if e.extends]
    assert log.extended_pcrs() == {e.pcr for e in extending}
    rows = log.rows_of_types(STRICT_TYPES)
    for pcr in range(24):
        mine = [e for e in extending if e.pcr == pcr]
        assert log.extend_count(pcr) == len(mine)
        assert log.extending_events(pcr) == tuple(mine)
        for bank in log.banks:
            assert log.extend_digests(bank, pcr) == tuple(e.digests.get(bank, b"") for e in mine)
        strict = [e for e in mine if e.untrusted_type in STRICT_TYPES]
        assert [r[0] for r in rows.get(pcr, [])] == [e.index for e in strict]
        for row, ev in zip(rows.get(pcr, []), strict, strict=True):
            assert row[1:3] == (ev.pcr, ev.untrusted_type) and row[4] == ev.data
            assert log.row_digests(row) == tuple(ev.digests.items())
    for ev in events:  # every event: the verdict of the raw fields is digest_verified's
        lies = digest_contradicts_data(ev.untrusted_type, ev.data, tuple(ev.digests.items()))
        assert lies == (digest_verified(ev) is False)


def test_rows_of_a_log_built_from_events() -> None:
    log = parse_event_log((EVENTLOG_DIR / MOK).read_bytes())
    rebuilt = EventLog.from_events(format=log.format, banks=log.banks, events=log.events)
    rows = rebuilt.rows_of_types(STRICT_TYPES)
    assert rows == log.rows_of_types(STRICT_TYPES)
    for pcr_rows in rows.values():
        for row in pcr_rows:
            assert rebuilt.row_digests(row) == log.row_digests(row)


def test_separator_with_a_false_digest_still_fails() -> None:
    _, log, tpm = _host(MOK)
    sep = next(e for e in log.events if e.pcr == 7 and e.untrusted_type == EventType.EV_SEPARATOR)
    evil = event(log, 7, EventType.EV_SEPARATOR, b"\x00\x00\x00\x00")
    evil = replace_event(evil, digests={b: os.urandom(len(d)) for b, d in sep.digests.items()})
    events = [evil if e.index == sep.index else e for e in log.events]
    raw2 = serialize(log, events)
    tpm.boot(parse_event_log(raw2))
    found = appraise_event_log(raw2, {"sha256": dict(enumerate(tpm.pcrs["sha256"]))}, ["sha256"])
    assert any(
        c.id == "eventlog.separator" and c.status is CheckStatus.FAIL and "not the hash" in c.reason
        for c in found.checks
    )


# --------------------------------------------------------------------------
# AK memos
# --------------------------------------------------------------------------


def test_parse_public_memo_returns_equal_keys_and_still_refuses_bad_bytes() -> None:
    a, b = UnsafeSoftTpm(key_type="ecc"), UnsafeSoftTpm(key_type="ecc")
    pa, pb = parse_public(a.ak_public_bytes), parse_public(b.ak_public_bytes)
    assert parse_public(a.ak_public_bytes) is pa  # memoised
    assert pa != pb and pa.public_key().public_numbers() != pb.public_key().public_numbers()
    assert pa.public_key().public_numbers() == a.ak.public_key().public_numbers()
    with pytest.raises(TpmFormatError):
        parse_public(a.ak_public_bytes + b"\0")
    with pytest.raises(TpmFormatError):
        parse_public(a.ak_public_bytes + b"\0")  # failures are not memoised
