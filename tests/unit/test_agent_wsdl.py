"""The committed wsdl/agent.wsdl is what the code generates (regenerate with
``python -m soapattest.agent.wsdl > wsdl/agent.wsdl``)."""

from __future__ import annotations

import os
import subprocess
import sys

from lxml import etree

from soapattest.agent.wsdl import PLACEHOLDER_URL, canonical_wsdl, generate_wsdl
from tests.conftest import ROOT

COMMITTED = ROOT / "wsdl" / "agent.wsdl"
WSDL = "{http://schemas.xmlsoap.org/wsdl/}"


def test_committed_wsdl_is_up_to_date() -> None:
    assert generate_wsdl() == COMMITTED.read_bytes(), (
        "wsdl/agent.wsdl is stale: run python -m soapattest.agent.wsdl > wsdl/agent.wsdl"
    )


def test_generation_does_not_depend_on_hash_seed() -> None:
    outs = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-m", "soapattest.agent.wsdl"], check=True,
                              capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed})
        outs.add(done.stdout)
    assert outs == {COMMITTED.read_bytes()}


def test_wsdl_contract() -> None:
    root = etree.fromstring(COMMITTED.read_bytes())
    assert root.get("targetNamespace") == "urn:soapattest:agent:v1"
    ops = [op.get("name") for op in root.iter(f"{WSDL}operation")
           if op.getparent().tag == f"{WSDL}portType"]
    assert ops == ["GetIdentity", "ActivateCredential", "GetQuote", "GetEventLog", "GetImaLog"]
    binding = root.find(f"{WSDL}binding/{{http://schemas.xmlsoap.org/wsdl/soap/}}binding")
    assert binding is not None
    assert binding.get("style") == "document"
    assert binding.get("transport") == "http://schemas.xmlsoap.org/soap/http"
    bodies = root.iter("{http://schemas.xmlsoap.org/wsdl/soap/}body")
    assert {b.get("use") for b in bodies} == {"literal"}
    text = COMMITTED.read_text()
    assert 'type="xs:base64Binary"' in text
    assert PLACEHOLDER_URL in text


def test_canonical_form_replaces_location_and_sorts() -> None:
    live = COMMITTED.read_bytes().replace(PLACEHOLDER_URL.encode(), b"http://10.1.2.3:4444/")
    assert canonical_wsdl(live) == COMMITTED.read_bytes()
    assert canonical_wsdl(live, location=None) != COMMITTED.read_bytes()
