"""Forged, replayed and mismatched quotes, through the SOAP service (in process).

A caller holds a nonce from IssueNonce and submits a quote with VerifyQuote (or
a hostile agent answers the server's own GetQuote). The quotes are made by a
software AK enrolled by the test-only path, so they can carry what a real TPM
would never sign. Each test first gets the honest twin TRUSTED, then attacks;
:func:`assert_defended` checks the exact refusal, that the attack's report
supersedes the earlier TRUSTED one, that nothing else changed, and that the
server keeps serving.

The pure engine has one test per rejection reason in
``tests/unit/test_verify_quote.py``; these build on it through the whole
request path (XML guard, WS-Security, schema, nonce store, report store).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from soapattest.model import CheckStatus, TrustStatus
from soapattest.tpm.attest import CertifyInfo, parse_attest
from soapattest.tpm.constants import TpmAlg
from soapattest.tpm.eventlog import parse_event_log
from soapattest.tpm.marshal import attest_to_bytes, build_attest, sign_ecdsa
from soapattest.tpm.pcr import PcrSelection, PcrValues
from soapattest.verify.quote import QuoteEvidence
from tests.adversarial.hostile_agent import DROP, Call, quote_response
from tests.adversarial.soft import SoftHost
from tests.adversarial.support import Lab, Outcome, assert_defended

Forge = Callable[[SoftHost, bytes, PcrSelection, SoftHost], QuoteEvidence]


def honest(lab: Lab, host: SoftHost) -> Outcome:
    """The positive twin: a fresh nonce, an honest quote, the honest log -> TRUSTED."""
    nonce = lab.issue_nonce(host.name)
    quote = host.tpm.quote(nonce, lab.selection())
    out = lab.verify_quote(host.name, nonce, quote, event_log=host.event_log)
    assert out.status is TrustStatus.TRUSTED, (out.fault, out.message, out.failing())
    return out


def _signed(host: SoftHost, attest: bytes, pcrs: PcrValues) -> QuoteEvidence:
    """``attest`` signed by ``host``'s software AK (what a real TPM would never sign)."""
    return QuoteEvidence(attest, host.tpm.sign(attest), pcrs)


def _edit(host: SoftHost, nonce: bytes, sel: PcrSelection, **changes: object) -> QuoteEvidence:
    q = host.tpm.quote(nonce, sel)
    attest = attest_to_bytes(replace(parse_attest(q.attest), **changes))  # type: ignore[arg-type]
    return _signed(host, attest, q.raw_pcrs)


def _flip_signature(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
    q = h.tpm.quote(n, s)
    sig = bytearray(q.signature)
    sig[-3] ^= 0x01
    return replace(q, signature=bytes(sig))


def _other_ak(h: SoftHost, n: bytes, s: PcrSelection, other: SoftHost) -> QuoteEvidence:
    return other.tpm.quote(n, s)  # same firmware, same PCRs, our nonce: another TPM's AK


def _certify(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
    q = h.tpm.quote(n, s)
    a = parse_attest(q.attest)
    attest = build_attest(
        attested=CertifyInfo(name=h.tpm.ak_name, qualified_name=h.tpm.qualified_signer),
        extra_data=n,
        qualified_signer=a.qualified_signer,
        clock_info=a.clock_info,
        firmware_version=a.firmware_version,
    )
    return _signed(h, attest, q.raw_pcrs)


def _trailing_attest(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
    q = h.tpm.quote(n, s)
    return _signed(h, q.attest + b"\x00\x00\x00\x01", q.raw_pcrs)


def _trailing_signature(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
    q = h.tpm.quote(n, s)
    return replace(q, signature=q.signature + b"\x00")


def _reported(change: Callable[[dict[str, dict[int, bytes]], SoftHost], None]) -> Forge:
    """An honest quote whose reported PCR values are then changed by ``change``."""

    def forge(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
        q = h.tpm.quote(n, s)
        pcrs = {bank: dict(values) for bank, values in q.raw_pcrs.items()}
        change(pcrs, h)
        return replace(q, raw_pcrs=pcrs)

    return forge


def _other_index(p: dict[str, dict[int, bytes]], h: SoftHost) -> None:
    p["sha256"][8] = p["sha256"].pop(7)


def _other_bank(p: dict[str, dict[int, bytes]], h: SoftHost) -> None:
    p["sha1"] = {i: h.tpm.pcrs["sha1"][i] for i in p.pop("sha256")}


def _superset(p: dict[str, dict[int, bytes]], h: SoftHost) -> None:
    p["sha256"][8] = h.tpm.pcrs["sha256"][8]


def _subset(p: dict[str, dict[int, bytes]], h: SoftHost) -> None:
    del p["sha256"][7]


def _changed_value(p: dict[str, dict[int, bytes]], h: SoftHost) -> None:
    p["sha256"][4] = os.urandom(32)


def _selecting(
    selection: dict[str, list[int]] | PcrSelection, report: dict[str, list[int]] | None = None
) -> Forge:
    """A quote over ``selection`` that reports the values of ``report`` (default: the same)."""
    sel = selection if isinstance(selection, PcrSelection) else PcrSelection.from_mapping(selection)

    def forge(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
        q = h.tpm.quote(n, sel)
        if report is None:
            return q
        return replace(q, raw_pcrs=h.tpm.values(PcrSelection.from_mapping(report)))

    return forge


def _sha1_signature(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
    q = h.tpm.quote(n, s)
    key = h.tpm._key  # the software AK; a TPM would refuse (its template fixes SHA-256)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return replace(q, signature=sign_ecdsa(key, q.attest, TpmAlg.SHA1))


def _other_nonce(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
    return h.tpm.quote(os.urandom(32), s)


def _nonce_prefix(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
    return h.tpm.quote(n[:16], s)


def _qualified_signer(h: SoftHost, n: bytes, s: PcrSelection, _o: SoftHost) -> QuoteEvidence:
    return _edit(h, n, s, qualified_signer=h.tpm.ak_name[:2] + os.urandom(32))


FORGERIES: list[tuple[str, Forge, str]] = [
    ("bit-flipped-signature", _flip_signature, "quote.signature"),
    ("another-hosts-ak", _other_ak, "quote.signature"),
    ("wrong-magic", lambda h, n, s, o: _edit(h, n, s, magic=0xFF544347 ^ 1), "quote.magic"),
    ("wrong-type-certify-with-nonce", _certify, "quote.type"),
    ("trailing-bytes-after-attest", _trailing_attest, "quote.format"),
    ("trailing-bytes-after-signature", _trailing_signature, "quote.format"),
    ("selection-other-index", _reported(_other_index), "quote.pcr_selection"),
    ("selection-other-bank", _reported(_other_bank), "quote.pcr_selection"),
    ("selection-superset", _reported(_superset), "quote.pcr_selection"),
    ("selection-subset", _reported(_subset), "quote.pcr_selection"),
    (
        "selection-empty-bank",
        _selecting(PcrSelection((("sha256", ()),)), {"sha256": list(range(8))}),
        "quote.pcr_selection",
    ),
    (
        "selection-no-bank",
        _selecting(PcrSelection(()), {"sha256": list(range(8))}),
        "quote.pcr_selection",
    ),
    ("selection-short-of-policy", _selecting({"sha256": [0, 1, 2, 3]}), "quote.pcr_selection"),
    ("reported-value-changed", _reported(_changed_value), "quote.pcr_digest"),
    ("sha1-bank-for-sha256-policy", _selecting({"sha1": list(range(8))}), "quote.pcr_selection"),
    ("sha1-signature-hash", _sha1_signature, "quote.signature_scheme"),
    ("other-nonce-in-quote", _other_nonce, "quote.nonce"),
    ("nonce-prefix-in-quote", _nonce_prefix, "quote.nonce"),
    ("qualified-signer-swapped", _qualified_signer, "quote.qualified_signer"),
]


@pytest.fixture(scope="module")
def other(lab: Lab) -> SoftHost:
    """Another enrolled host booted from the same firmware (same PCR values)."""
    host, _ = lab.soft_host("q-other-host")
    return host


@pytest.mark.parametrize(("case", "forge", "check"), FORGERIES, ids=[f[0] for f in FORGERIES])
def test_forged_quote_is_untrusted(
    lab: Lab, other: SoftHost, case: str, forge: Forge, check: str
) -> None:
    host, _ = lab.soft_host(f"q-{case}")
    honest(lab, host)  # positive twin: TRUSTED (the trust the attack must supersede)
    before = lab.snapshot()
    nonce = lab.issue_nonce(host.name)
    forged = forge(host, nonce, lab.selection(), other)
    out = lab.verify_quote(host.name, nonce, forged, event_log=host.event_log)
    assert_defended(lab, before, out, host=host.name, check=check, status=TrustStatus.UNTRUSTED)
    assert out.has(check, CheckStatus.FAIL)
    # the clock state of a refused quote is never recorded: the honest twin still verifies
    honest(lab, host)


def test_schema_refuses_a_quote_without_pcr_values(lab: Lab) -> None:
    host, _ = lab.soft_host("q-no-pcr-values")
    honest(lab, host)
    before = lab.snapshot()
    nonce = lab.issue_nonce(host.name)
    q = host.tpm.quote(nonce, PcrSelection((("sha256", ()),)))
    assert q.raw_pcrs == {}
    out = lab.verify_quote(host.name, nonce, q, event_log=host.event_log)
    assert_defended(lab, before, out, host=host.name, fault="Client.SchemaValidationError")
    honest(lab, host)


def test_sha1_ak_is_refused_on_every_quote(lab: Lab) -> None:
    twin, _ = lab.soft_host("q-sha256-ak")
    honest(lab, twin)  # positive twin: the same host with a SHA-256 AK
    host, _ = lab.soft_host("q-sha1-ak", sig_hash="sha1")
    before = lab.snapshot()
    nonce = lab.issue_nonce(host.name)
    out = lab.verify_quote(
        host.name, nonce, host.tpm.quote(nonce, lab.selection()), event_log=host.event_log
    )
    assert_defended(lab, before, out, host=host.name, check="quote.signature_scheme")
    assert "sha1" in out.failing()["quote.signature_scheme"]


@pytest.mark.parametrize(
    ("counter", "delta"),
    [("reset_count", -1), ("restart_count", -1), ("clock", -5000)],
)
def test_counters_going_backwards_are_untrusted(lab: Lab, counter: str, delta: int) -> None:
    host, _ = lab.soft_host(f"q-regress-{counter.replace('_', '-')}")
    host.tpm.restart_count, host.tpm.clock = 3, 10_000_000
    honest(lab, host)  # records resetCount/restartCount/clock of a verified quote
    setattr(host.tpm, counter, getattr(host.tpm, counter) + delta)
    before = lab.snapshot()
    nonce = lab.issue_nonce(host.name)
    q = host.tpm.quote(nonce, lab.selection(), advance_clock=0)
    out = lab.verify_quote(host.name, nonce, q, event_log=host.event_log)
    assert_defended(lab, before, out, host=host.name, check="quote.clock")
    # a reboot (counters forward) is fine and reported
    host.tpm.boot(parse_event_log(host.event_log))
    nonce = lab.issue_nonce(host.name)
    q = host.tpm.quote(nonce, lab.selection(), advance_clock=10_000_000)
    rebooted = lab.verify_quote(host.name, nonce, q, event_log=host.event_log)
    assert rebooted.status is TrustStatus.TRUSTED, rebooted.failing()


# ---------------------------------------------------------------------- nonces


def test_replayed_request_is_refused(lab: Lab) -> None:
    host, _ = lab.soft_host("q-replay")
    nonce = lab.issue_nonce(host.name)
    quote = host.tpm.quote(nonce, lab.selection())
    first = lab.verify_quote(host.name, nonce, quote, event_log=host.event_log)
    assert first.status is TrustStatus.TRUSTED  # positive twin
    before = lab.snapshot()
    again = lab.verify_quote(host.name, nonce, quote, event_log=host.event_log)
    assert_defended(lab, before, again, host=host.name, fault="Client.InvalidNonce")
    # a new quote over the used nonce is no better
    fresh = host.tpm.quote(nonce, lab.selection())
    out = lab.verify_quote(host.name, nonce, fresh, event_log=host.event_log)
    assert_defended(lab, before, out, host=host.name, fault="Client.InvalidNonce")


def test_expired_nonce_is_refused(lab: Lab) -> None:
    host, _ = lab.soft_host("q-expired")
    honest(lab, host)
    ttl = lab.ctx.config.nonce_ttl
    with lab.clock_offset(-(ttl + 60)):  # issued ttl+60 s ago: expired now
        nonce = lab.issue_nonce(host.name)
    before = lab.snapshot()
    out = lab.verify_quote(
        host.name, nonce, host.tpm.quote(nonce, lab.selection()), event_log=host.event_log
    )
    assert_defended(lab, before, out, host=host.name, fault="Client.InvalidNonce")
    with lab.clock_offset(-(ttl - 30)):  # positive twin: issued within its lifetime
        nonce = lab.issue_nonce(host.name)
    ok = lab.verify_quote(
        host.name, nonce, host.tpm.quote(nonce, lab.selection()), event_log=host.event_log
    )
    assert ok.status is TrustStatus.TRUSTED


@pytest.mark.parametrize("whose", ["another-host", "never-issued", "empty"])
def test_nonce_not_issued_for_this_host_is_refused(lab: Lab, other: SoftHost, whose: str) -> None:
    host, _ = lab.soft_host(f"q-nonce-{whose}")
    honest(lab, host)
    if whose == "another-host":
        nonce = lab.issue_nonce(other.name)
    elif whose == "never-issued":
        nonce = os.urandom(32)
    else:
        nonce = b""
    before = lab.snapshot()
    out = lab.verify_quote(
        host.name, nonce, host.tpm.quote(nonce, lab.selection()), event_log=host.event_log
    )
    assert_defended(lab, before, out, host=host.name, fault="Client.InvalidNonce")
    if whose == "another-host":  # the nonce is still good for its own host
        quote = other.tpm.quote(nonce, lab.selection())
        mine = lab.verify_quote(other.name, nonce, quote, event_log=other.event_log)
        assert mine.status is TrustStatus.TRUSTED


def test_agent_replaying_its_previous_quote_is_untrusted(lab: Lab) -> None:
    host, agent = lab.soft_host("q-agent-replay")
    recorded: list[bytes] = []

    def record(call: Call) -> bytes:
        q = host.tpm.quote(call.binary("nonce"), call.selection())
        answer = quote_response(q.attest, q.signature, q.raw_pcrs)
        recorded.append(answer)
        return answer

    agent.on("GetQuote", record)
    assert lab.attest(host.name).status is TrustStatus.TRUSTED  # positive twin
    agent.on("GetQuote", lambda call: recorded[0])
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check="quote.nonce")


def test_agent_answering_after_the_nonce_expired_is_unknown(lab: Lab) -> None:
    host, agent = lab.soft_host("q-agent-late")
    assert lab.attest(host.name).status is TrustStatus.TRUSTED  # positive twin
    ttl = lab.ctx.config.nonce_ttl

    def late(call: Call) -> bytes:
        lab.clock.offset = type(lab.clock.offset)()  # the server's "now" moves past the expiry
        q = host.tpm.quote(call.binary("nonce"), call.selection())
        return quote_response(q.attest, q.signature, q.raw_pcrs)

    agent.on("GetQuote", late)
    before = lab.snapshot()
    with lab.clock_offset(-(ttl + 30)):  # the nonce is issued ttl+30 s "before" the answer
        out = lab.attest(host.name)
    assert_defended(
        lab, before, out, host=host.name, check="quote.freshness", status=TrustStatus.UNKNOWN
    )
    agent.honest()
    assert lab.attest(host.name).status is TrustStatus.TRUSTED


def test_agent_that_drops_the_quote_call_is_unknown(lab: Lab) -> None:
    """A quick fail-closed check in this module (more in test_agent_failures)."""
    host, agent = lab.soft_host("q-agent-drop")
    assert lab.attest(host.name).status is TrustStatus.TRUSTED
    agent.on("GetQuote", DROP)
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(
        lab, before, out, host=host.name, check="agent.evidence", status=TrustStatus.UNKNOWN
    )
