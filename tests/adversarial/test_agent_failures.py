"""Agents that answer garbage, HTML, a fault, too much, or nothing: fail closed, keep polling.

A victim host's hostile agent misbehaves on one operation; PollHosts then asks
for the victim and two honest bystanders at once. The victim's new report is
UNKNOWN (an ``agent.evidence`` ERROR check, never TRUSTED) and supersedes its
earlier TRUSTED one; the bystanders are attested TRUSTED in the same call.
The agent client's own parsing rules are unit-tested in
``tests/unit/test_agent_*``; here the whole pull path runs over real HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from soapattest.agent.logs import read_ima_chunk
from soapattest.model import TrustStatus
from tests.adversarial.hostile_agent import (
    DROP,
    HANG,
    Answer,
    Call,
    Reply,
    Rule,
    envelope,
    eventlog_response,
    fault_response,
    ima_response,
    q,
)
from tests.adversarial.support import IMA_BIOS_LOG, IMA_LIST, Lab, assert_defended


@pytest.fixture(scope="module")
def bystanders(lab: Lab) -> Iterator[list[str]]:
    names = []
    for i in range(2):
        host, _ = lab.soft_host(f"agent-bystander-{i}")
        names.append(host.name)
    yield names


def _bomb() -> bytes:
    ents = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY a{i} "{("&a" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 9)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE e [{ents}]><soap:Envelope '
        'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<a:GetQuoteResponse xmlns:a="urn:soapattest:agent:v1">&a8;</a:GetQuoteResponse>'
        "</soap:Body></soap:Envelope>"
    ).encode()


def _deep() -> bytes:
    inner = "<a:x>" * 200 + "</a:x>" * 200
    return (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:a="urn:soapattest:agent:v1"><soap:Body><a:GetQuoteResponse>'
        f"{inner}</a:GetQuoteResponse></soap:Body></soap:Envelope>"
    ).encode()


def _two_answers() -> bytes:
    one = envelope(etree.Element(q("GetQuoteResponse")))
    return one.replace(b"</soap:Body>", b"<a:GetQuoteResponse/></soap:Body>")


FAILURES: list[tuple[str, str, Answer | Rule]] = [
    ("garbage", "GetQuote", Reply(os.urandom(3000))),
    ("html", "GetQuote", Reply(b"<html><body>502 Bad Gateway</body></html>", 502, "text/html")),
    ("plain-text-200", "GetQuote", Reply(b"OK", 200, "text/plain")),
    ("soap-fault", "GetQuote", fault_response("Server.TpmError", "TPM is in failure mode")),
    ("nothing-until-timeout", "GetQuote", HANG),
    ("connection-closed", "GetQuote", DROP),
    ("redirect", "GetQuote", Reply(b"", 302, "text/xml", {"Location": "http://127.0.0.1:9/"})),
    ("xml-bomb", "GetQuote", Reply(_bomb())),
    ("deep-nesting", "GetQuote", Reply(_deep())),
    ("wrong-answer-element", "GetQuote", eventlog_response(b"not a quote")),
    ("two-answers", "GetQuote", Reply(_two_answers())),
    ("empty-quote", "GetQuote", envelope(etree.Element(q("GetQuoteResponse")))),
    ("oversized-answer", "GetQuote", lambda _call: Reply(b"<x>" + b"A" * (24 << 20) + b"</x>")),
    ("eventlog-garbage", "GetEventLog", Reply(os.urandom(500))),
    ("eventlog-fault", "GetEventLog", fault_response("Server.EventLogUnavailable", "gone")),
    ("eventlog-not-base64", "GetEventLog", eventlog_response(b"").replace(
        b"<a:data></a:data>", b"<a:data>!!not base64!!</a:data>")),
]


@pytest.mark.parametrize(("case", "operation", "answer"), FAILURES,
                         ids=[f[0] for f in FAILURES])
def test_misbehaving_agent_is_unknown_and_polling_goes_on(
    lab: Lab, bystanders: list[str], case: str, operation: str, answer: Answer | Rule
) -> None:
    host, agent = lab.soft_host(f"agent-{case}")
    first = lab.poll([host.name, *bystanders])  # positive twin: everybody TRUSTED
    assert {n: o.status for n, o in first.items()} == dict.fromkeys(
        [host.name, *bystanders], TrustStatus.TRUSTED
    )
    agent.on(operation, answer)
    before = lab.snapshot()
    results = lab.poll([host.name, *bystanders])
    agent.release()
    assert_defended(
        lab, before, results[host.name], host=host.name, check="agent.evidence",
        status=TrustStatus.UNKNOWN,
    )
    for name in bystanders:
        assert results[name].status is TrustStatus.TRUSTED, results[name].failing()
    agent.honest()
    assert lab.attest(host.name).status is TrustStatus.TRUSTED


def test_ima_chunks_that_do_not_advance_are_unknown(lab: Lab) -> None:
    host, agent = lab.soft_host(
        "agent-ima-stuck", policy="p-ima", log=IMA_BIOS_LOG, ima=IMA_LIST, banks=("sha256",)
    )
    assert lab.attest(host.name).status is TrustStatus.TRUSTED
    agent.on("GetImaLog", lambda call: ima_response(b"", int(call.text("offset") or 0), True))
    before = lab.snapshot()
    out = lab.attest(host.name)
    assert_defended(lab, before, out, host=host.name, check="agent.evidence",
                    status=TrustStatus.UNKNOWN)
    assert "advance" in out.failing()["agent.evidence"]


def test_ima_list_dripped_in_tiny_chunks_is_unknown(
    lab: Lab, bystanders: list[str], tmp_path: Path
) -> None:
    """Every call is quick, but one byte at a time a 64 MiB cap is millions of calls: the
    server must give up early, or one hostile host holds a PollHosts answer for hours."""
    host, agent = lab.soft_host(
        "agent-ima-drip", policy="p-ima", log=IMA_BIOS_LOG, ima=IMA_LIST, banks=("sha256",)
    )
    # positive twin: the list in the smallest chunks an agent sends (ima_chunk_max 4 KiB,
    # cut on entry boundaries by the agent's own reader)
    listing = tmp_path / "binary_runtime_measurements_sha256"
    listing.write_bytes(IMA_LIST)

    def small_chunks(call: Call) -> bytes:
        chunk = read_ima_chunk(listing, int(call.text("offset") or 0), 4096)
        return ima_response(chunk.data, chunk.next_offset, chunk.more)

    agent.on("GetImaLog", small_chunks)
    assert lab.attest(host.name).status is TrustStatus.TRUSTED
    assert agent.calls.count("GetImaLog") > len(IMA_LIST) // 4096
    limit = 3000  # the drip ends here, so that a server without a bound still answers

    def drip(call: Call) -> bytes:
        offset = int(call.text("offset") or 0)
        more = offset + 1 < limit
        return ima_response(IMA_LIST[offset : offset + 1], offset + 1, more)

    agent.on("GetImaLog", drip)
    agent.calls.clear()
    before = lab.snapshot()
    results = lab.poll([host.name, *bystanders])
    assert_defended(lab, before, results[host.name], host=host.name, check="agent.evidence",
                    status=TrustStatus.UNKNOWN)
    assert agent.calls.count("GetImaLog") < 100
    assert [results[n].status for n in bystanders] == [TrustStatus.TRUSTED] * 2


def test_agent_gone_is_unknown_and_polling_goes_on(lab: Lab, bystanders: list[str]) -> None:
    host, agent = lab.soft_host("agent-gone")
    assert lab.attest(host.name).status is TrustStatus.TRUSTED
    agent.close()  # connection refused from now on
    before = lab.snapshot()
    results = lab.poll([host.name, *bystanders])
    assert_defended(lab, before, results[host.name], host=host.name, check="agent.evidence",
                    status=TrustStatus.UNKNOWN)
    assert [results[n].status for n in bystanders] == [TrustStatus.TRUSTED] * 2
