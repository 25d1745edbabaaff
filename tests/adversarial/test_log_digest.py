"""The agent's event-log digest in GetQuote: a log the server holds is not fetched again.

An agent names the SHA-256 of its event log in every quote; the server takes
a log with that digest from its evidence store instead of calling GetEventLog.
The digest is as untrusted as the log: whatever it names must still replay to
the signed PCR values, so naming another (stored) log borrows nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from lxml import etree

from soapattest.model import CheckStatus, TrustStatus
from tests.adversarial.hostile_agent import Call, b64, envelope_of, q, soft_answer
from tests.adversarial.soft import SoftHost
from tests.adversarial.support import Lab, assert_defended
from tests.conftest import EVENTLOG_DIR

# Another machine's log (the soft hosts boot GOOD_LOG).
OTHER_LOG = (EVENTLOG_DIR / "gotpmtools_arch-linux-workstation.bin").read_bytes()


def naming(host: SoftHost, digest: bytes) -> Callable[[Call], bytes]:
    """GetQuote answered honestly by ``host``, plus an ``event_log_sha256`` of our choice."""

    def rule(call: Call) -> bytes:
        answer = soft_answer(host, call)
        assert isinstance(answer, bytes)
        tree = etree.fromstring(answer)
        quote = tree.find(f".//{q('quote')}")
        assert quote is not None
        etree.SubElement(quote, q("event_log_sha256")).text = b64(digest)
        return envelope_of(tree)

    return rule


def test_a_stored_log_named_by_the_agent_is_not_fetched_again(lab: Lab) -> None:
    host, agent = lab.soft_host("digest-own")
    first = lab.attest(host.name)  # an honest attestation stores the log
    assert first.status is TrustStatus.TRUSTED, first.failing()
    agent.on("GetQuote", naming(host, hashlib.sha256(host.event_log).digest()))
    agent.calls.clear()
    again = lab.attest(host.name)
    assert again.status is TrustStatus.TRUSTED, again.failing()
    assert again.has("eventlog.replay", CheckStatus.PASS)
    assert agent.calls == ["GetQuote"]  # the log came from the evidence store
    # twin: an agent that names no digest (an older agent) is asked for its log
    agent.honest()
    agent.calls.clear()
    assert lab.attest(host.name).status is TrustStatus.TRUSTED
    assert agent.calls == ["GetQuote", "GetEventLog"]


def test_an_unknown_digest_makes_the_server_fetch_the_log(lab: Lab) -> None:
    host, agent = lab.soft_host("digest-unknown")
    agent.on("GetQuote", naming(host, os.urandom(32)))
    out = lab.attest(host.name)
    assert out.status is TrustStatus.TRUSTED, out.failing()
    assert agent.calls == ["GetQuote", "GetEventLog"]


def test_naming_another_stored_log_borrows_nothing(lab: Lab) -> None:
    with lab.store.transaction() as tx:  # another machine's log, stored by its attestation
        other = tx.evidence.put(OTHER_LOG, "eventlog", now=lab.clock())
    host, agent = lab.soft_host("digest-other")
    assert lab.attest(host.name).status is TrustStatus.TRUSTED  # honest first
    agent.on("GetQuote", naming(host, other))
    agent.calls.clear()
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check="eventlog.replay",
                    status=TrustStatus.UNTRUSTED)
    assert agent.calls == ["GetQuote"]
    # twin: naming its own log again is TRUSTED
    agent.on("GetQuote", naming(host, hashlib.sha256(host.event_log).digest()))
    assert lab.attest(host.name).status is TrustStatus.TRUSTED


def test_a_malformed_digest_is_an_unusable_answer(lab: Lab) -> None:
    host, agent = lab.soft_host("digest-short")
    agent.on("GetQuote", naming(host, hashlib.sha256(host.event_log).digest()[:31]))
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check="agent.evidence",
                    status=TrustStatus.UNKNOWN)
    assert "event_log_sha256" in out.failing()["agent.evidence"]
    # twin: the full 32 bytes are accepted
    agent.on("GetQuote", naming(host, hashlib.sha256(host.event_log).digest()))
    assert lab.attest(host.name).status is TrustStatus.TRUSTED
