"""Lying event logs and IMA lists, pulled by AttestHost from a hostile agent (in process).

The soft host's PCRs are extended the way its (possibly abusive) firmware did;
its agent serves a log of the attacker's choice. The positive twin of every
case is the same host serving its honest log -> TRUSTED. The pure engine's
tests are ``tests/unit/test_verify_appraise.py``; these go through the server's
pull path (GetQuote, GetEventLog, GetImaLog over HTTP, report store).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest

from soapattest.model import CheckStatus, TrustStatus
from soapattest.tpm.eventlog import EventType, UntrustedEvent, parse_event_log
from soapattest.tpm.pcr import PcrSelection
from tests.adversarial.hostile_agent import Call, HostileAgent, quote_response
from tests.adversarial.soft import SoftHost
from tests.adversarial.support import (
    GOOD_LOG,
    IMA_BIOS_LOG,
    IMA_LIST,
    NS,
    Lab,
    assert_defended,
    whitelist_versions,
)
from tests.conftest import EVENTLOG_DIR
from tests.logtools import event, replace_event, serialize

GOOD = parse_event_log(GOOD_LOG)
EV = EventType


def _first(events: list[UntrustedEvent], pcr: int, etype: int) -> int:
    return next(i for i, e in enumerate(events) if e.pcr == pcr and e.untrusted_type == etype)


def rewritten(mutate: Callable[[list[UntrustedEvent]], None]) -> bytes:
    """The good log with its events changed by ``mutate`` (same SpecID header)."""
    events = list(GOOD.events)
    mutate(events)
    return serialize(GOOD, events)


def retype(pcr: int, old: int, new: int) -> Callable[[list[UntrustedEvent]], None]:
    def mutate(events: list[UntrustedEvent]) -> None:
        i = _first(events, pcr, old)
        events[i] = replace_event(events[i], untrusted_type=new)

    return mutate


def trusted_baseline(lab: Lab, name: str, **kw: Any) -> tuple[SoftHost, HostileAgent]:
    """A soft host behind its (so far honest) agent, attested TRUSTED."""
    host, agent = lab.soft_host(name, **kw)
    first = lab.attest(host.name)
    assert first.status is TrustStatus.TRUSTED, (first.fault, first.failing())
    return host, agent


# ---------------------------------------------------------------------- relabelling

RETYPES = [
    # (id, pcr, old type, new type, check)
    # a UEFI variable's digest is H(data), like an action's: Secure Boot parsing catches it
    ("pcr7-config-as-action", 7, EV.EV_EFI_VARIABLE_DRIVER_CONFIG, EV.EV_EFI_ACTION,
     "secureboot.events"),
    ("pcr7-config-as-authority", 7, EV.EV_EFI_VARIABLE_DRIVER_CONFIG,
     EV.EV_EFI_VARIABLE_AUTHORITY, "secureboot.enabled"),
    ("pcr7-authority-as-config", 7, EV.EV_EFI_VARIABLE_AUTHORITY,
     EV.EV_EFI_VARIABLE_DRIVER_CONFIG, "secureboot.events"),
    ("pcr4-application-as-action", 4, EV.EV_EFI_BOOT_SERVICES_APPLICATION, EV.EV_EFI_ACTION,
     "eventlog.event_type"),
    ("pcr4-application-as-separator", 4, EV.EV_EFI_BOOT_SERVICES_APPLICATION, EV.EV_SEPARATOR,
     "eventlog.separator"),
]


@pytest.mark.parametrize(("case", "pcr", "old", "new", "check"), RETYPES,
                         ids=[r[0] for r in RETYPES])
def test_relabelled_event_that_still_replays_is_untrusted(
    lab: Lab, case: str, pcr: int, old: int, new: int, check: str
) -> None:
    host, _ = trusted_baseline(lab, f"log-{case}")
    host.event_log = rewritten(retype(pcr, old, new))
    assert parse_event_log(host.event_log).events
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check=check)
    # digests are unchanged: the relabelled log still replays exactly
    assert out.has("eventlog.replay", CheckStatus.PASS)
    assert not any(c == "eventlog.replay" and s is CheckStatus.FAIL for c, s, _ in out.checks)


# ---------------------------------------------------------------------- separators


def _variable_after_separator(events: list[UntrustedEvent]) -> None:
    sep = _first(events, 7, EV.EV_SEPARATOR)
    var = events[_first(events, 7, EV.EV_EFI_VARIABLE_DRIVER_CONFIG)]
    events.remove(var)
    events.insert(sep, replace_event(var))  # after the separator (indices shifted by one)


def _duplicate_separator(pcr: int) -> Callable[[list[UntrustedEvent]], None]:
    def mutate(events: list[UntrustedEvent]) -> None:
        sep = _first(events, pcr, EV.EV_SEPARATOR)
        events.insert(sep + 1, replace_event(events[sep]))

    return mutate


def _separator_data(
    data: bytes, *, honest_digest: bool = True
) -> Callable[[list[UntrustedEvent]], None]:
    def mutate(events: list[UntrustedEvent]) -> None:
        sep = _first(events, 7, EV.EV_SEPARATOR)
        if honest_digest:
            events[sep] = event(GOOD, 7, EV.EV_SEPARATOR, data)
        else:  # digest of 00000000, data of something else
            events[sep] = replace_event(events[sep], data=data)

    return mutate


def _missing_separator(events: list[UntrustedEvent]) -> None:
    del events[_first(events, 7, EV.EV_SEPARATOR)]


SEPARATOR_ABUSE = [
    ("variable-after-separator", _variable_after_separator, "secureboot.events"),
    ("duplicate-separator-pcr7", _duplicate_separator(7), "eventlog.separator"),
    ("duplicate-separator-pcr4", _duplicate_separator(4), "eventlog.separator"),
    ("separator-data-not-zero", _separator_data(b"\x02\x00\x00\x00"), "eventlog.separator"),
    ("error-separator", _separator_data(b"\x01\x00\x00\x00"), "eventlog.separator"),
    ("separator-data-lies", _separator_data(b"\x00\x00\x00\x01", honest_digest=False),
     "eventlog.separator"),
    ("missing-separator", _missing_separator, "eventlog.separator"),
]


@pytest.mark.parametrize(("case", "mutate", "check"), SEPARATOR_ABUSE,
                         ids=[s[0] for s in SEPARATOR_ABUSE])
def test_separator_abuse_by_the_firmware_is_untrusted(
    lab: Lab, case: str, mutate: Callable[[list[UntrustedEvent]], None], check: str
) -> None:
    host, _ = trusted_baseline(lab, f"log-{case}")
    abused = rewritten(mutate)
    host.boot(abused)  # the firmware really measured this
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check=check)
    host.boot(GOOD_LOG)
    assert lab.attest(host.name).status is TrustStatus.TRUSTED


# ---------------------------------------------------------------------- unquoted PCRs


def test_quote_leaving_out_a_pcr_whose_events_are_served_is_untrusted(lab: Lab) -> None:
    """The agent quotes PCR 0-6 only but serves PCR 7's (Secure Boot) events."""
    host, agent = trusted_baseline(lab, "log-unquoted-pcr7")

    def without_pcr7(call: Call) -> bytes:
        wanted = call.selection().as_dict()
        wanted["sha256"] = [p for p in wanted["sha256"] if p != 7]
        q = host.tpm.quote(call.binary("nonce"), PcrSelection.from_mapping(wanted))
        return quote_response(q.attest, q.signature, q.raw_pcrs)

    agent.on("GetQuote", without_pcr7)
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check="quote.pcr_selection")


def test_events_in_pcrs_the_quote_does_not_cover_are_never_trusted(lab: Lab) -> None:
    """Fake events in PCR 14 (never quoted under the policy) are ignored, never trusted:
    the verdict rests on the quoted PCRs alone and GetMeasurements marks them untrusted."""
    host, _ = trusted_baseline(lab, "log-events-pcr14")
    fake = [event(GOOD, 14, EV.EV_IPL, b"shim says all is well " + bytes([i])) for i in range(3)]
    host.event_log = serialize(GOOD, [*GOOD.events, *fake])
    before = lab.snapshot()
    out = lab.attest(host.name)
    ignored = [r for c, s, r in out.checks if c == "eventlog.unquoted" and s is CheckStatus.INFO]
    assert any("PCR 14" in reason for reason in ignored), ignored
    assert out.status is TrustStatus.TRUSTED  # PCR 0-7 are genuine; PCR 14 is not looked at
    resp = lab.call(f"<t:GetMeasurements><t:host>{host.name}</t:host></t:GetMeasurements>")
    events = resp.root.iter(f"{{{NS}}}event")
    pcr14 = [e for e in events if e.findtext(f"{{{NS}}}pcr") == "14"]
    assert len(pcr14) == sum(1 for e in GOOD.events if e.pcr == 14) + len(fake)
    assert {e.findtext(f"{{{NS}}}trusted") for e in pcr14} == {"false"}
    assert lab.snapshot().state == before.state


# ---------------------------------------------------------------------- malformed logs


def _truncated() -> bytes:
    return GOOD_LOG[: len(GOOD_LOG) // 2 + 7]


MALFORMED: list[tuple[str, Callable[[], bytes], str, TrustStatus]] = [
    ("garbage", lambda: os.urandom(4096), "eventlog.parse", TrustStatus.UNTRUSTED),
    ("truncated", _truncated, "eventlog.parse", TrustStatus.UNTRUSTED),
    ("empty", lambda: b"", "eventlog.parse", TrustStatus.UNTRUSTED),
    ("good-log-plus-garbage", lambda: GOOD_LOG + os.urandom(100), "eventlog.parse",
     TrustStatus.UNTRUSTED),
    ("20-megabytes", lambda: os.urandom(20 * 1000 * 1000), "agent.evidence",
     TrustStatus.UNKNOWN),
] + [
    (f"bad-{p.stem}", lambda p=p: p.read_bytes(), "eventlog.parse", TrustStatus.UNTRUSTED)
    for p in sorted((EVENTLOG_DIR / "bad").rglob("*.bin"))
]


@pytest.mark.parametrize(("case", "make", "check", "status"), MALFORMED,
                         ids=[m[0] for m in MALFORMED])
def test_malformed_or_oversized_log_fails_closed(
    lab: Lab, case: str, make: Callable[[], bytes], check: str, status: TrustStatus
) -> None:
    host, _ = trusted_baseline(lab, f"log-{case}"[:63])
    host.event_log = make()
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check=check, status=status)
    host.event_log = GOOD_LOG
    assert lab.attest(host.name).status is TrustStatus.TRUSTED


# ---------------------------------------------------------------------- golden capture


def test_golden_capture_from_a_lying_host_creates_nothing(lab: Lab) -> None:
    """ImportWhitelistFromHost takes events only from PCRs whose log replays to a verified
    quote: a log that does not replay, or a forged quote, stores no whitelist."""
    host, agent = trusted_baseline(lab, "log-golden-liar")
    body = (
        f"<t:ImportWhitelistFromHost><t:host>{host.name}</t:host><t:name>{{name}}</t:name>"
        + "".join(f"<t:pcr>{p}</t:pcr>" for p in range(8))
        + "</t:ImportWhitelistFromHost>"
    )
    # a log whose PCR 4 does not replay (an extra event the TPM never saw)
    host.event_log = serialize(GOOD, [*GOOD.events, event(GOOD, 4, EV.EV_EFI_ACTION, b"x")])
    before = lab.snapshot()
    out = lab.outcome(body.format(name="wl-from-liar"))
    assert_defended(lab, before, out, host=host.name, fault="Client.InvalidPolicy")
    # a forged quote (bit-flipped signature)
    host.event_log = GOOD_LOG

    def flipped(call: Call) -> bytes:
        q = host.tpm.quote(call.binary("nonce"), call.selection())
        sig = bytearray(q.signature)
        sig[-1] ^= 1
        return quote_response(q.attest, bytes(sig), q.raw_pcrs)

    agent.on("GetQuote", flipped)
    out = lab.outcome(body.format(name="wl-from-forger"))
    assert_defended(lab, before, out, host=host.name, fault="Client.InvalidQuote")
    # positive twin: the honest host's golden values are captured
    agent.honest()
    ok = lab.call(body.format(name="wl-from-honest"))
    assert ok.status == 200, ok.body[:300]
    assert whitelist_versions(lab.store, "wl-from-honest") == (1,)


# ---------------------------------------------------------------------- IMA


def _ima_entries(raw: bytes) -> list[tuple[int, int]]:
    """(start of the template digest, end of the entry) of every sha256 binary entry."""
    out = []
    pos = 0
    while pos < len(raw):
        digest_at = pos + 4
        pos = digest_at + 32
        (name_len,) = struct.unpack_from("<I", raw, pos)
        pos += 4 + name_len
        (data_len,) = struct.unpack_from("<I", raw, pos)
        pos += 4 + data_len
        out.append((digest_at, pos))
    return out


def swap_file_hash(raw: bytes, index: int, new_hash: bytes, *, recompute: bool) -> bytes:
    """Entry ``index`` of a binary sha256 ima-ng list with its file hash replaced; with
    ``recompute`` its template digest is the hash of the changed template data (as the
    kernel would have recorded for that file)."""
    digest_at, end = _ima_entries(raw)[index]
    entry = bytearray(raw[digest_at:end])
    data_start = 32 + 4 + struct.unpack_from("<I", entry, 32)[0] + 4
    data = bytes(entry[data_start:])
    old = data[4 + len(b"sha256:\0") : 4 + len(b"sha256:\0") + 32]
    assert len(old) == 32 and data.count(old) == 1
    data = data.replace(old, new_hash)
    entry[data_start:] = data
    if recompute:
        entry[:32] = hashlib.sha256(data).digest()
    return raw[:digest_at] + bytes(entry) + raw[end:]


EVIL = hashlib.sha256(b"a trojaned /usr/bin/kmod").digest()


def ima_host(
    lab: Lab, name: str, policy: str, *, measured: bytes = IMA_LIST
) -> tuple[SoftHost, HostileAgent]:
    host, agent = lab.soft_host(name, policy=policy, log=IMA_BIOS_LOG, ima=measured,
                                banks=("sha256",))
    return host, agent


@pytest.mark.parametrize(
    ("case", "policy", "recompute", "check"),
    [
        ("ima-hash-swapped", "p-ima", False, "ima.template"),
        ("ima-hash-swapped-digest-recomputed", "p-ima", True, "ima.replay"),
        ("ima-allow-hash-swapped", "p-ima-allow", False, "ima.template"),
        ("ima-allow-digest-recomputed", "p-ima-allow", True, "ima.replay"),
    ],
)
def test_ima_entry_with_swapped_file_hash_is_untrusted(
    lab: Lab, case: str, policy: str, recompute: bool, check: str
) -> None:
    """The kernel measured the real file; the served list claims another hash for it."""
    host, _ = ima_host(lab, case, policy)
    assert lab.attest(host.name).status is TrustStatus.TRUSTED  # positive twin
    real = parse_ima_entry(IMA_LIST, 1)
    other = parse_ima_entry(IMA_LIST, 2)  # another file's (allowed) hash
    host.ima_log = swap_file_hash(IMA_LIST, 1, other if real != other else EVIL,
                                  recompute=recompute)
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check=check)


def test_ima_measurement_of_a_file_outside_the_allowlist_is_untrusted(lab: Lab) -> None:
    """The kernel measured a trojaned file and the agent serves the list honestly."""
    evil_list = swap_file_hash(IMA_LIST, 1, EVIL, recompute=True)
    twin, _ = ima_host(lab, "ima-allow-twin", "p-ima-allow")
    assert lab.attest(twin.name).status is TrustStatus.TRUSTED  # positive twin
    host, _ = ima_host(lab, "ima-allow-trojan", "p-ima-allow", measured=evil_list)
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check="ima.allowlist")
    assert "/usr/bin/kmod" in out.failing()["ima.allowlist"]
    assert out.has("ima.replay", CheckStatus.PASS)


def test_ima_list_cut_short_is_untrusted(lab: Lab) -> None:
    """Hiding the last measurements: no prefix of the served list replays to PCR 10."""
    host, _ = ima_host(lab, "ima-cut-short", "p-ima")
    assert lab.attest(host.name).status is TrustStatus.TRUSTED
    host.ima_log = IMA_LIST[: _ima_entries(IMA_LIST)[-2][1]]
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check="ima.replay")


def parse_ima_entry(raw: bytes, index: int) -> bytes:
    from soapattest.tpm.ima import parse_ima

    file_hash = parse_ima(raw).entries[index].file_hash
    assert file_hash is not None
    return file_hash

