"""Client converters: what the client encodes is what the WSDL's types accept, and decodes
back to the same domain values (zeep builds the wire objects from the shipped WSDL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import zeep

from soapattest.client import WSDL_PATH, hardened_settings
from soapattest.client import convert as cv
from soapattest.errors import ServerResponseError
from soapattest.model import (
    Combine,
    EntryKind,
    ImaMode,
    ImaRequirements,
    Policy,
    SecureBootRequirements,
    TrustStatus,
    WhitelistEntry,
    WhitelistRef,
    WorkloadRequirements,
)

NS = "{urn:soapattest:v1}"


@pytest.fixture(scope="module")
def wire() -> zeep.Client:
    return zeep.Client(str(WSDL_PATH), settings=hardened_settings())


def build(client: zeep.Client, type_name: str, value: dict[str, Any]) -> Any:
    return client.get_type(NS + type_name)(**value)


def test_policy_round_trip(wire: zeep.Client) -> None:
    policy = Policy(
        name="web",
        version=3,
        combine=Combine.ANY_OF,
        whitelists=(WhitelistRef("rhel8", 2), WhitelistRef("shim")),
        banks=("sha256", "sha384"),
        use_event_log=False,
        secure_boot=SecureBootRequirements(True, (b"\x01" * 32,), (b"\x02" * 32,)),
        ima=ImaRequirements(ImaMode.INTEGRITY, "sha1"),
        signature_hashes=("sha384",),
        min_rsa_bits=3072,
        min_ecc_bits=384,
        description="web tier",
    )
    encoded = cv.policy_out(policy)
    decoded = cv.policy_in(build(wire, "Policy", {**encoded, "version": 3}))
    assert decoded == policy


def test_policy_defaults_survive(wire: zeep.Client) -> None:
    policy = Policy(name="p", version=1, combine=Combine.ALL_OF, whitelists=(WhitelistRef("w"),))
    assert cv.policy_in(build(wire, "Policy", {**cv.policy_out(policy), "version": 1})) == policy


def test_entries_round_trip(wire: zeep.Client) -> None:
    entries = [
        WhitelistEntry(EntryKind.PCR, "sha256", 0, b"\xaa" * 32, label="firmware"),
        WhitelistEntry(EntryKind.IMA, "sha256", 10, b"\xbb" * 32, path="/usr/bin/true"),
    ]
    decoded = [cv.entry_in(build(wire, "WhitelistEntry", e)) for e in cv.entries_out(entries)]
    assert decoded == entries


def test_requirements_are_schema_valid(wire: zeep.Client) -> None:
    reqs = WorkloadRequirements(60, ("p",), ("pool-a",), {"rack": "r1"}, ("eventlog",))
    encoded = cv.requirements_out(reqs)
    assert encoded is not None
    value = build(wire, "WorkloadRequirements", encoded)
    assert value.max_report_age == 60
    assert [(lb.key, lb.value) for lb in value.label] == [("rack", "r1")]
    assert cv.requirements_out(None) is None


def test_pcrs_round_trip(wire: zeep.Client) -> None:
    pcrs = {"sha256": {0: b"\x00" * 32, 7: b"\x07" * 32}, "sha1": {0: b"\x01" * 20}}
    items = [build(wire, "PcrValue", v) for v in cv.pcrs_out(pcrs)]
    assert cv.pcrs_in(items) == pcrs


def test_times_become_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert cv.utc(datetime(2024, 1, 1, 12, tzinfo=plus2)) == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert cv.utc(datetime(2024, 1, 1, 12)) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert cv.utc(None) is None


def test_report_decodes(wire: zeep.Client) -> None:
    now = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    report = build(
        wire,
        "TrustReport",
        {
            "report_id": 9,
            "host": "h",
            "status": "UNTRUSTED",
            "created_at": now,
            "policy": "p",
            "policy_version": 2,
            "whitelist": [{"name": "w", "version": 1}],
            "check": [
                {
                    "id": "whitelist.pcr",
                    "component": "whitelist:w",
                    "status": "FAIL",
                    "reason": "PCR 4 differs",
                    "pcr": 4,
                    "bank": "sha256",
                }
            ],
            "pcr": [{"bank": "sha256", "index": 4, "value": b"\x04" * 32}],
        },
    )
    decoded = cv.report_in(report)
    assert decoded.status is TrustStatus.UNTRUSTED
    assert decoded.whitelists == (("w", 1),)
    assert decoded.failures()[0].pcr == 4
    assert decoded.pcrs == {"sha256": {4: b"\x04" * 32}}
    assert decoded.created_at == now


def test_report_without_time_is_a_bad_answer(wire: zeep.Client) -> None:
    report = build(wire, "TrustReport", {"report_id": 9, "host": "h", "status": "TRUSTED"})
    with pytest.raises(ServerResponseError):
        cv.report_in(report)


def test_audit_details_are_json_objects(wire: zeep.Client) -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    base = {
        "id": 1,
        "at": now,
        "actor": "a",
        "action": "x",
        "target_type": "host",
        "target": "h",
        "outcome": "ok",
    }
    assert cv.audit_in(build(wire, "AuditRecord", {**base, "details": '{"n": 1}'})).details == {
        "n": 1
    }
    assert cv.audit_in(build(wire, "AuditRecord", {**base, "details": "not json"})).details == {
        "text": "not json"
    }
