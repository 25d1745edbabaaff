"""Wire types <-> domain types: the one converter module of the SOAP boundary.

Decoding refuses what the schema cannot express (duplicates, inconsistent
combinations) with :class:`~soapattest.errors.InvalidArgumentError`;
encoding never fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from soapattest.errors import InvalidArgumentError
from soapattest.model import (
    AuditRecord,
    Check,
    CheckStatus,
    Combine,
    EntryKind,
    Host,
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
from soapattest.service import types as w
from soapattest.tpm.constants import hash_by_name
from soapattest.tpm.pcr import PcrSelection, PcrValues


def _list(value: Any) -> list[Any]:
    return list(value) if value else []


def _bytes(value: Any) -> bytes:
    """Spyne decodes base64Binary into a list of byte chunks."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return b"".join(value)


# ---------------------------------------------------------------- decoding (wire -> domain)


def labels_in(items: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _list(items):
        if item.key in out:
            raise InvalidArgumentError(f"label {item.key!r} given twice", argument="labels")
        out[item.key] = item.value or ""
    return out


def selection_in(items: Any) -> PcrSelection:
    mapping: dict[str, list[int]] = {}
    for item in _list(items):
        if item.bank in mapping:
            raise InvalidArgumentError(f"bank {item.bank} selected twice", argument="selection")
        pcrs = [int(p) for p in _list(item.pcr)]
        if len(set(pcrs)) != len(pcrs):
            raise InvalidArgumentError(f"a {item.bank} PCR is selected twice", argument="selection")
        mapping[item.bank] = pcrs
    if not mapping:
        raise InvalidArgumentError("the PCR selection is empty", argument="selection")
    return PcrSelection.from_mapping(mapping)


def pcr_values_in(items: Any) -> PcrValues:
    out: dict[str, dict[int, bytes]] = {}
    for item in _list(items):
        bank_values = out.setdefault(item.bank, {})
        if int(item.index) in bank_values:
            raise InvalidArgumentError(f"PCR {item.bank}:{item.index} given twice", argument="pcr")
        bank_values[int(item.index)] = _bytes(item.value)
    return out


def entries_in(items: Any) -> list[WhitelistEntry]:
    return [
        WhitelistEntry(
            kind=EntryKind(item.kind),
            bank=item.bank,
            pcr=int(item.pcr),
            digest=_bytes(item.digest),
            path=item.path or "",
            label=item.label or "",
        )
        for item in _list(items)
    ]


def policy_in(p: Any) -> Policy:
    if p is None:
        raise InvalidArgumentError("no policy given", argument="policy")
    sb = None
    if p.secure_boot is not None:
        sb = SecureBootRequirements(
            require_enabled=bool(p.secure_boot.require_enabled),
            dbx_must_contain=tuple(_bytes(x) for x in _list(p.secure_boot.dbx_must_contain)),
            allowed_authorities=tuple(_bytes(x) for x in _list(p.secure_boot.allowed_authority)),
        )
    ima = ImaRequirements()
    if p.ima is not None:
        ima = ImaRequirements(mode=ImaMode(p.ima.mode), bank=p.ima.bank)
    refs = tuple(
        WhitelistRef(r.name, int(r.version) if r.version is not None else None)
        for r in _list(p.whitelist)
    )
    hashes = tuple(_list(p.signature_hash)) or ("sha256", "sha384", "sha512")
    for h in hashes:
        if hash_by_name(h) is None:
            raise InvalidArgumentError(f"unknown signature hash {h!r}", argument="signature_hash")
    return Policy(
        name=p.name,
        version=0,
        combine=Combine(p.combine),
        whitelists=refs,
        banks=tuple(_list(p.bank)),
        use_event_log=True if p.use_event_log is None else bool(p.use_event_log),
        secure_boot=sb,
        ima=ima,
        signature_hashes=hashes,
        min_rsa_bits=int(p.min_rsa_bits) if p.min_rsa_bits is not None else 2048,
        min_ecc_bits=int(p.min_ecc_bits) if p.min_ecc_bits is not None else 256,
        description=p.description or "",
    )


def requirements_in(r: Any) -> WorkloadRequirements:
    if r is None:
        return WorkloadRequirements()
    return WorkloadRequirements(
        max_report_age=int(r.max_report_age) if r.max_report_age is not None else 3600,
        pools=tuple(_list(r.pool)),
        policies=tuple(_list(r.policy)),
        labels=labels_in(r.label),
        components=tuple(_list(r.component)),
    )


def names_in(items: Any, argument: str = "host") -> list[str]:
    names = [str(n) for n in _list(items)]
    if not names:
        raise InvalidArgumentError(f"no {argument} named", argument=argument)
    return names


# ---------------------------------------------------------------- encoding (domain -> wire)


def pcr_values_out(values: PcrValues) -> list[w.PcrValue]:
    return [
        w.new(w.PcrValue, bank=bank, index=pcr, value=[value])
        for bank in sorted(values)
        for pcr, value in sorted(values[bank].items())
    ]


def host_out(h: Host, effective_policy: str | None = None) -> w.HostInfo:
    ident = h.identity
    return w.HostInfo(
        name=h.name,
        agent_url=h.agent_url,
        pool=h.pool or None,
        policy=h.policy or None,
        effective_policy=effective_policy or None,
        labels=[w.Label(key=k, value=v) for k, v in sorted(h.labels.items())],
        description=h.description or None,
        ak_name=[ident.ak_name] if ident else None,
        ek_certificate=[ident.ek_certificate] if ident and ident.ek_certificate else None,
        activated_at=ident.activated_at if ident else None,
        reset_count=h.last_quote.reset_count if h.last_quote else None,
        created_at=h.created_at,
    )


def check_out(c: Check) -> w.Check:
    return w.new(
        w.Check,
        id=c.id,
        component=c.component,
        status=c.status.value,
        reason=c.reason,
        expected=c.expected,
        actual=c.actual,
        pcr=c.pcr,
        bank=c.bank,
        event_index=c.event_index,
    )


def report_out(r: TrustReport) -> w.TrustReport:
    return w.new(
        w.TrustReport,
        report_id=r.report_id,
        host=r.host,
        status=r.status.value,
        created_at=r.created_at,
        policy=r.policy,
        policy_version=r.policy_version,
        whitelist=[w.new(w.WhitelistVersion, name=n, version=v) for n, v in r.whitelists],
        check=[check_out(c) for c in r.checks],
        pcr=pcr_values_out({b: dict(v) for b, v in r.pcrs.items()}),
        reset_count=r.reset_count,
        restart_count=r.restart_count,
        clock=r.clock,
        firmware_version=r.firmware_version,
        reboot_detected=r.reboot_detected,
        event_log_sha256=[r.event_log_sha256] if r.event_log_sha256 else None,
    )


def entry_out(e: WhitelistEntry) -> w.WhitelistEntry:
    return w.WhitelistEntry(
        kind=e.kind.value,
        bank=e.bank,
        pcr=e.pcr,
        digest=[e.digest],
        path=e.path or None,
        label=e.label or None,
    )


def whitelist_out(wl: Whitelist, *, with_entries: bool = True) -> w.Whitelist:
    return w.Whitelist(
        name=wl.name,
        version=wl.version,
        description=wl.description or None,
        created_at=wl.created_at,
        created_by=wl.created_by or None,
        source_host=wl.source_host or None,
        entry_count=len(wl.entries),
        entry=[entry_out(e) for e in wl.entries] if with_entries else [],
    )


def policy_out(p: Policy) -> w.Policy:
    sb = None
    if p.secure_boot is not None:
        sb = w.SecureBootRequirements(
            require_enabled=p.secure_boot.require_enabled,
            dbx_must_contain=[[x] for x in p.secure_boot.dbx_must_contain],
            allowed_authority=[[x] for x in p.secure_boot.allowed_authorities],
        )
    return w.Policy(
        name=p.name,
        version=p.version,
        combine=p.combine.value,
        whitelist=[w.WhitelistRef(name=r.name, version=r.version) for r in p.whitelists],
        bank=list(p.banks),
        use_event_log=p.use_event_log,
        secure_boot=sb,
        ima=w.ImaRequirements(mode=p.ima.mode.value, bank=p.ima.bank),
        signature_hash=list(p.signature_hashes),
        min_rsa_bits=p.min_rsa_bits,
        min_ecc_bits=p.min_ecc_bits,
        description=p.description or None,
        created_at=p.created_at,
        created_by=p.created_by or None,
    )


def decision_out(d: PlacementDecision) -> w.PlacementDecision:
    return w.PlacementDecision(
        host=d.host, allowed=d.allowed, reason=list(d.reasons), report_id=d.report_id
    )


def host_trust_out(
    host: str, report: TrustReport | None, *, cached: bool, code: str = "", message: str = ""
) -> w.HostTrust:
    return w.new(
        w.HostTrust,
        host=host,
        status=report.status.value if report else None,
        cached=cached,
        report=report_out(report) if report else None,
        fault_code=code or None,
        fault_string=message or None,
    )


def audit_out(a: AuditRecord) -> w.AuditRecord:
    return w.AuditRecord(
        id=a.record_id,
        at=a.at,
        actor=a.actor,
        action=a.action,
        target_type=a.target_type,
        target=a.target,
        outcome=a.outcome,
        details=json.dumps(dict(a.details), sort_keys=True, default=str) if a.details else None,
    )


def statuses_in(value: str | None) -> TrustStatus | None:
    return TrustStatus(value) if value else None


def check_statuses() -> Sequence[str]:
    return [s.value for s in CheckStatus]


def kinds_in(items: Iterable[str]) -> tuple[EntryKind, ...]:
    return tuple(EntryKind(k) for k in items)
