"""Wire values (zeep objects of ``urn:soapattest:v1``) <-> domain values, for the client.

The one converter module of the client boundary. Decoding takes what zeep
parsed (already checked against the WSDL's schema: strict mode) and builds
frozen dataclasses; times become timezone-aware UTC, absent optional text
becomes ``""``. Encoding builds the plain dicts/lists zeep serialises.
Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from soapattest.client.results import (
    HostInfo,
    HostTrust,
    MeasuredEvent,
    Measurements,
    PoolInfo,
    RetrievedQuote,
    TrustAssertion,
    WhitelistSummary,
)
from soapattest.errors import ServerResponseError
from soapattest.model import (
    AuditRecord,
    Check,
    CheckStatus,
    Combine,
    EntryKind,
    ImaMode,
    ImaRequirements,
    PlacementDecision,
    Policy,
    SecureBootRequirements,
    TrustReport,
    TrustStatus,
    Whitelist,
    WhitelistEntry,
    WhitelistRef,
    WorkloadRequirements,
)

PcrMap = Mapping[str, Mapping[int, bytes]]


def _list(value: Any) -> list[Any]:
    return list(value) if value else []


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _bytes(value: Any) -> bytes:
    return b"" if value is None else bytes(value)


def _required(value: Any, what: str) -> Any:
    """A value the schema requires; its absence is a bad answer, not a default."""
    if value is None:
        raise ServerResponseError(f"the server's answer lacks {what}")
    return value


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (a naive value is taken as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ---------------------------------------------------------------- decoding (wire -> domain)
#
# zeep's CompoundValue resolves every attribute through __getattr__ (~2 us each); its
# ``__values__`` mapping (what zeep.helpers.serialize_object reads) is ten times faster,
# which matters for reports with dozens of checks.


def _f(obj: Any) -> dict[str, Any]:
    """The element values of a zeep object (absent optional elements are None)."""
    values: dict[str, Any] = obj.__values__
    return values


def pcrs_in(items: Any) -> dict[str, dict[int, bytes]]:
    """Repeated PcrValue -> bank -> PCR -> value."""
    out: dict[str, dict[int, bytes]] = {}
    for item in _list(items):
        v = _f(item)
        out.setdefault(str(v["bank"]), {})[int(v["index"])] = _bytes(v["value"])
    return out


def host_in(h: Any) -> HostInfo:
    v = _f(h)
    return HostInfo(
        name=str(v["name"]),
        agent_url=str(v["agent_url"]),
        pool=_text(v["pool"]),
        policy=_text(v["policy"]),
        effective_policy=_text(v["effective_policy"]),
        labels={str(_f(lb)["key"]): _text(_f(lb)["value"]) for lb in _list(v["labels"])},
        description=_text(v["description"]),
        ak_name=_bytes(v["ak_name"]),
        ek_certificate=_bytes(v["ek_certificate"]),
        activated_at=utc(v["activated_at"]),
        reset_count=_int(v["reset_count"]),
        created_at=utc(v["created_at"]),
    )


_CHECK_STATUS = {s.value: s for s in CheckStatus}


def check_in(c: Any) -> Check:
    v = _f(c)
    status = _CHECK_STATUS.get(v["status"])
    if status is None:
        raise ServerResponseError(f"unknown check status {v['status']!r}")
    return Check(
        id=str(v["id"]),
        component=str(v["component"]),
        status=status,
        reason=_text(v["reason"]),
        expected=v["expected"],
        actual=v["actual"],
        pcr=_int(v["pcr"]),
        bank=v["bank"],
        event_index=_int(v["event_index"]),
    )


def report_in(r: Any) -> TrustReport:
    v = _f(r)
    created = utc(_required(v["created_at"], "a report's created_at"))
    assert created is not None
    return TrustReport(
        host=str(v["host"]),
        status=TrustStatus(v["status"]),
        checks=tuple(check_in(c) for c in _list(v["check"])),
        created_at=created,
        policy=v["policy"],
        policy_version=_int(v["policy_version"]),
        whitelists=tuple(
            (str(_f(w)["name"]), int(_f(w)["version"])) for w in _list(v["whitelist"])
        ),
        pcrs=pcrs_in(v["pcr"]),
        reset_count=_int(v["reset_count"]),
        restart_count=_int(v["restart_count"]),
        clock=_int(v["clock"]),
        firmware_version=_int(v["firmware_version"]),
        reboot_detected=bool(v["reboot_detected"]),
        event_log_sha256=_bytes(v["event_log_sha256"]) or None,
        report_id=int(v["report_id"]),
    )


def host_trust_in(t: Any) -> HostTrust:
    v = _f(t)
    return HostTrust(
        host=str(v["host"]),
        status=TrustStatus(v["status"]) if v["status"] else None,
        cached=bool(v["cached"]),
        report=report_in(v["report"]) if v["report"] is not None else None,
        fault_code=_text(v["fault_code"]),
        fault_string=_text(v["fault_string"]),
    )


def entry_in(e: Any) -> WhitelistEntry:
    v = _f(e)
    return WhitelistEntry(
        kind=EntryKind(v["kind"]),
        bank=str(v["bank"]),
        pcr=int(v["pcr"]),
        digest=_bytes(v["digest"]),
        path=_text(v["path"]),
        label=_text(v["label"]),
    )


def whitelist_in(w: Any) -> Whitelist:
    v = _f(w)
    return Whitelist(
        name=str(v["name"]),
        version=int(v["version"]),
        entries=tuple(entry_in(e) for e in _list(v["entry"])),
        description=_text(v["description"]),
        created_at=utc(v["created_at"]),
        created_by=_text(v["created_by"]),
        source_host=_text(v["source_host"]),
    )


def whitelist_summary_in(w: Any) -> WhitelistSummary:
    v = _f(w)
    return WhitelistSummary(
        name=str(v["name"]),
        version=int(v["version"]),
        entry_count=int(v["entry_count"]),
        description=_text(v["description"]),
        created_at=utc(v["created_at"]),
        created_by=_text(v["created_by"]),
        source_host=_text(v["source_host"]),
    )


def policy_in(p: Any) -> Policy:
    v = _f(p)
    sb = None
    if v["secure_boot"] is not None:
        s = _f(v["secure_boot"])
        sb = SecureBootRequirements(
            require_enabled=bool(s["require_enabled"]),
            dbx_must_contain=tuple(_bytes(x) for x in _list(s["dbx_must_contain"])),
            allowed_authorities=tuple(_bytes(x) for x in _list(s["allowed_authority"])),
        )
    ima = ImaRequirements()
    if v["ima"] is not None:
        i = _f(v["ima"])
        ima = ImaRequirements(mode=ImaMode(i["mode"]), bank=str(i["bank"]))
    return Policy(
        name=str(v["name"]),
        version=int(v["version"] or 0),
        combine=Combine(v["combine"]),
        whitelists=tuple(
            WhitelistRef(str(_f(r)["name"]), _int(_f(r)["version"])) for r in _list(v["whitelist"])
        ),
        banks=tuple(str(b) for b in _list(v["bank"])),
        use_event_log=True if v["use_event_log"] is None else bool(v["use_event_log"]),
        secure_boot=sb,
        ima=ima,
        signature_hashes=tuple(str(h) for h in _list(v["signature_hash"])),
        min_rsa_bits=int(v["min_rsa_bits"]) if v["min_rsa_bits"] is not None else 2048,
        min_ecc_bits=int(v["min_ecc_bits"]) if v["min_ecc_bits"] is not None else 256,
        description=_text(v["description"]),
        created_at=utc(v["created_at"]),
        created_by=_text(v["created_by"]),
    )


def decision_in(d: Any) -> PlacementDecision:
    v = _f(d)
    return PlacementDecision(
        host=str(v["host"]),
        allowed=bool(v["allowed"]),
        reasons=tuple(str(x) for x in _list(v["reason"])),
        report_id=_int(v["report_id"]),
    )


def pool_in(p: Any) -> PoolInfo:
    v = _f(p)
    return PoolInfo(name=str(v["name"]), policy=_text(v["policy"]), host_count=int(v["host_count"]))


def audit_in(a: Any) -> AuditRecord:
    v = _f(a)
    details: dict[str, Any] = {}
    if v["details"]:
        try:
            parsed = json.loads(v["details"])
        except ValueError:
            parsed = {"text": str(v["details"])}
        details = parsed if isinstance(parsed, dict) else {"value": parsed}
    at = utc(_required(v["at"], "an audit record's time"))
    assert at is not None
    return AuditRecord(
        at=at,
        actor=str(v["actor"]),
        action=str(v["action"]),
        target_type=str(v["target_type"]),
        target=str(v["target"]),
        outcome=str(v["outcome"]),
        details=details,
        record_id=int(v["id"]),
    )


def retrieved_in(r: Any) -> RetrievedQuote:
    v = _f(r)
    q = _f(v["quote"])
    return RetrievedQuote(
        nonce=_bytes(v["nonce"]),
        attest=_bytes(q["attest"]),
        signature=_bytes(q["signature"]),
        pcrs=pcrs_in(q["pcr"]),
        event_log=_bytes(v["event_log"]) if v["event_log"] is not None else None,
    )


def _event_in(e: Any) -> MeasuredEvent:
    v = _f(e)
    return MeasuredEvent(
        index=int(v["index"]),
        pcr=int(v["pcr"]),
        type=str(v["type"]),
        digests={str(_f(d)["bank"]): _bytes(_f(d)["value"]) for d in _list(v["digest"])},
        summary=_text(v["summary"]),
        trusted=bool(v["trusted"]),
    )


def measurements_in(m: Any) -> Measurements:
    v = _f(m)
    return Measurements(
        host=str(v["host"]),
        report_id=int(v["report_id"]),
        pcrs=pcrs_in(v["pcr"]),
        events=tuple(_event_in(e) for e in _list(v["event"])),
    )


def assertion_in(a: Any) -> TrustAssertion:
    v = _f(a)
    return TrustAssertion(
        xml=str(v["assertion"]).encode("utf-8"),
        report_id=int(v["report_id"]),
        status=TrustStatus(v["status"]),
    )


# ---------------------------------------------------------------- encoding (domain -> wire)


def labels_out(labels: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted((labels or {}).items())]


def selection_out(selection: Mapping[str, Iterable[int]]) -> list[dict[str, Any]]:
    """bank -> PCR indices (a :class:`~soapattest.tpm.pcr.PcrSelection` mapping works too)."""
    return [{"bank": bank, "pcr": sorted(int(p) for p in pcrs)} for bank, pcrs in selection.items()]


def pcrs_out(values: PcrMap) -> list[dict[str, Any]]:
    return [
        {"bank": bank, "index": int(index), "value": bytes(value)}
        for bank in sorted(values)
        for index, value in sorted(values[bank].items())
    ]


def entry_out(e: WhitelistEntry) -> dict[str, Any]:
    return {
        "kind": EntryKind(e.kind).value,
        "bank": e.bank,
        "pcr": e.pcr,
        "digest": e.digest,
        "path": e.path or None,
        "label": e.label or None,
    }


def entries_out(entries: Iterable[WhitelistEntry]) -> list[dict[str, Any]]:
    return [entry_out(e) for e in entries]


def policy_out(p: Policy) -> dict[str, Any]:
    sb = None
    if p.secure_boot is not None:
        sb = {
            "require_enabled": p.secure_boot.require_enabled,
            "dbx_must_contain": list(p.secure_boot.dbx_must_contain),
            "allowed_authority": list(p.secure_boot.allowed_authorities),
        }
    return {
        "name": p.name,
        "combine": Combine(p.combine).value,
        "whitelist": [{"name": r.name, "version": r.version} for r in p.whitelists],
        "bank": list(p.banks),
        "use_event_log": p.use_event_log,
        "secure_boot": sb,
        "ima": {"mode": ImaMode(p.ima.mode).value, "bank": p.ima.bank},
        "signature_hash": list(p.signature_hashes),
        "min_rsa_bits": p.min_rsa_bits,
        "min_ecc_bits": p.min_ecc_bits,
        "description": p.description or None,
    }


def requirements_out(r: WorkloadRequirements | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "max_report_age": r.max_report_age,
        "pool": list(r.pools),
        "policy": list(r.policies),
        "label": labels_out(r.labels),
        "component": list(r.components),
    }
