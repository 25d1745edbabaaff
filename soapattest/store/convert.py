"""Row <-> domain conversion: the one converter module of the store boundary.

Every value that enters the store passes a check here first (so a bad argument
is an InvalidArgumentError before anything is written), and every row that
leaves it becomes a frozen dataclass of :mod:`soapattest.model`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from soapattest.errors import InvalidArgumentError
from soapattest.model import (
    AuditRecord,
    Check,
    CheckStatus,
    Combine,
    EntryKind,
    Host,
    HostIdentity,
    ImaMode,
    ImaRequirements,
    Policy,
    QuoteState,
    SecureBootRequirements,
    TrustReport,
    TrustStatus,
    User,
    Whitelist,
    WhitelistEntry,
    WhitelistRef,
)
from soapattest.store import validate
from soapattest.store.orm import (
    AuditRow,
    HostIdentityHistoryRow,
    HostRow,
    PolicyVersionRow,
    TrustReportRow,
    UserRow,
    WhitelistEntryRow,
    WhitelistVersionRow,
)

# A Core result row or a namespace with the columns as attributes (hot paths build
# domain values without loading ORM entities); the converters only read attributes.
RowLike = Any

MAX_PCR = 23
_SHORT = 16  # bank / kind / mode columns
_U32 = 1 << 32
_U64 = 1 << 64

# --------------------------------------------------------------------------- hosts


def identity_columns(identity: HostIdentity | None, since: datetime | None) -> dict[str, Any]:
    """HostRow column values for a (possibly absent) current identity."""
    if identity is None:
        return dict.fromkeys(
            (
                "ek_public",
                "ek_certificate",
                "ak_public",
                "ak_name",
                "qualified_signer",
                "agent_tls_pin",
                "activated_at",
                "identity_since",
            ),
        )
    if not isinstance(identity, HostIdentity):
        raise InvalidArgumentError("identity must be a HostIdentity", argument="identity")
    return {
        "ek_public": validate.blob(identity.ek_public, "identity.ek_public"),
        "ek_certificate": validate.blob(
            identity.ek_certificate, "identity.ek_certificate", empty=True
        ),
        "ak_public": validate.blob(identity.ak_public, "identity.ak_public"),
        "ak_name": validate.blob(identity.ak_name, "identity.ak_name"),
        "qualified_signer": validate.blob(
            identity.qualified_signer, "identity.qualified_signer", empty=True
        ),
        "agent_tls_pin": validate.name(identity.agent_tls_pin, "identity.agent_tls_pin",
                                       length=64, empty=True) or None,
        "activated_at": validate.utc(identity.activated_at, "identity.activated_at"),
        "identity_since": since,
    }


def quote_columns(state: QuoteState | None) -> dict[str, Any]:
    """HostRow column values for the last verified quote state."""
    if state is None:
        return dict.fromkeys(
            (
                "quote_clock",
                "quote_reset_count",
                "quote_restart_count",
                "quote_firmware_version",
                "quote_safe",
            ),
        )
    if not isinstance(state, QuoteState):
        raise InvalidArgumentError("state must be a QuoteState", argument="state")
    return {
        "quote_clock": validate.uint(state.clock, "state.clock", _U64),
        "quote_reset_count": validate.uint(state.reset_count, "state.reset_count", _U32),
        "quote_restart_count": validate.uint(state.restart_count, "state.restart_count", _U32),
        "quote_firmware_version": validate.uint(
            state.firmware_version, "state.firmware_version", _U64
        ),
        "quote_safe": bool(state.safe),
    }


def host_from_row(row: HostRow | RowLike) -> Host:
    identity = None
    if row.ek_public is not None and row.ak_public is not None and row.ak_name is not None:
        assert row.activated_at is not None
        identity = HostIdentity(
            ek_public=row.ek_public,
            ek_certificate=row.ek_certificate or b"",
            ak_public=row.ak_public,
            ak_name=row.ak_name,
            activated_at=row.activated_at,
            qualified_signer=row.qualified_signer or b"",
            agent_tls_pin=row.agent_tls_pin or "",
        )
    quote = None
    if row.quote_clock is not None:
        quote = QuoteState(
            clock=row.quote_clock,
            reset_count=row.quote_reset_count or 0,
            restart_count=row.quote_restart_count or 0,
            firmware_version=row.quote_firmware_version or 0,
            safe=bool(row.quote_safe),
        )
    return Host(
        name=row.name,
        agent_url=row.agent_url,
        pool=row.pool or "",
        policy=row.policy or "",
        labels=dict(row.labels),
        description=row.description,
        identity=identity,
        last_quote=quote,
        created_at=row.created_at,
    )


def identity_from_history(row: HostIdentityHistoryRow) -> HostIdentity:
    return HostIdentity(
        ek_public=row.ek_public,
        ek_certificate=row.ek_certificate,
        ak_public=row.ak_public,
        ak_name=row.ak_name,
        activated_at=row.activated_at,
        qualified_signer=row.qualified_signer,
        agent_tls_pin=row.agent_tls_pin or "",
    )


# --------------------------------------------------------------------------- whitelists


def entry(value: WhitelistEntry) -> WhitelistEntry:
    """Check one whitelist entry (kind, bank, PCR 0..23, non-empty digest; IMA entries and
    only they have a path). Returns it with ``kind`` as an EntryKind."""
    if not isinstance(value, WhitelistEntry):
        raise InvalidArgumentError("entries must be WhitelistEntry values", argument="entries")
    try:
        kind = EntryKind(value.kind)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"unknown entry kind {value.kind!r}", argument="entries"
        ) from exc
    validate.name(value.bank, "entries.bank", length=_SHORT)
    if validate.uint(value.pcr, "entries.pcr", MAX_PCR + 1) is None:
        raise InvalidArgumentError("entries.pcr is required", argument="entries.pcr")
    validate.blob(value.digest, "entries.digest")
    validate.text(value.label, "entries.label")
    validate.text(value.path, "entries.path")
    if kind is EntryKind.IMA:
        if not value.path:
            raise InvalidArgumentError("an IMA entry needs a path", argument="entries.path")
    elif value.path:
        raise InvalidArgumentError("only IMA entries have a path", argument="entries.path")
    return value if value.kind is kind else replace(value, kind=kind)


def entry_values(version_id: int, position: int, value: WhitelistEntry) -> dict[str, Any]:
    return {
        "version_id": version_id,
        "position": position,
        "kind": EntryKind(value.kind).value,
        "bank": value.bank,
        "pcr": value.pcr,
        "digest": value.digest,
        "path": value.path,
        "label": value.label,
    }


def entry_from_row(row: WhitelistEntryRow) -> WhitelistEntry:
    return WhitelistEntry(
        kind=EntryKind(row.kind),
        bank=row.bank,
        pcr=row.pcr,
        digest=row.digest,
        path=row.path,
        label=row.label,
    )


def whitelist_from_rows(
    wl_name: str, version: WhitelistVersionRow, entries: Iterable[WhitelistEntryRow]
) -> Whitelist:
    return Whitelist(
        name=wl_name,
        version=version.version,
        entries=tuple(entry_from_row(e) for e in entries),
        description=version.description,
        created_at=version.created_at,
        created_by=version.created_by,
        source_host=version.source_host,
    )


# --------------------------------------------------------------------------- policies


def _bank_list(values: Iterable[str], argument: str) -> list[str]:
    if isinstance(values, str):
        raise InvalidArgumentError(f"{argument} must be a sequence of names", argument=argument)
    out = [validate.name(v, argument, length=_SHORT) for v in values]
    if len(set(out)) != len(out):
        raise InvalidArgumentError(f"{argument} lists a name twice", argument=argument)
    return out


def policy_values(policy: Policy) -> dict[str, Any]:
    """PolicyVersionRow column values (except ids, version and audit columns)."""
    if not isinstance(policy, Policy):
        raise InvalidArgumentError("policy must be a Policy", argument="policy")
    try:
        combine = Combine(policy.combine)
        ima_mode = ImaMode(policy.ima.mode)
    except (ValueError, AttributeError) as exc:
        raise InvalidArgumentError(f"invalid policy: {exc}", argument="policy") from exc
    secure_boot = None
    if policy.secure_boot is not None:
        sb = policy.secure_boot
        secure_boot = {
            "require_enabled": bool(sb.require_enabled),
            "dbx_must_contain": [
                validate.blob(d, "secure_boot.dbx_must_contain").hex() for d in sb.dbx_must_contain
            ],
            "allowed_authorities": [
                validate.blob(d, "secure_boot.allowed_authorities").hex()
                for d in sb.allowed_authorities
            ],
        }
    for bits, argument in (
        (policy.min_rsa_bits, "min_rsa_bits"),
        (policy.min_ecc_bits, "min_ecc_bits"),
    ):
        validate.uint(bits, argument, 1 << 16)
    return {
        "combine": combine.value,
        "banks": _bank_list(policy.banks, "banks"),
        "use_event_log": bool(policy.use_event_log),
        "secure_boot": secure_boot,
        "ima_mode": ima_mode.value,
        "ima_bank": validate.name(policy.ima.bank, "ima.bank", length=_SHORT),
        "signature_hashes": _bank_list(policy.signature_hashes, "signature_hashes"),
        "min_rsa_bits": policy.min_rsa_bits,
        "min_ecc_bits": policy.min_ecc_bits,
        "description": validate.text(policy.description, "description"),
    }


def whitelist_refs(policy: Policy) -> tuple[WhitelistRef, ...]:
    """Check the policy's whitelist references (at least one, each named once)."""
    refs = tuple(policy.whitelists)
    seen: set[str] = set()
    for ref in refs:
        if not isinstance(ref, WhitelistRef):
            raise InvalidArgumentError(
                "whitelists must be WhitelistRef values", argument="whitelists"
            )
        validate.name(ref.name, "whitelists.name")
        if ref.version is not None:
            validate.uint(ref.version, "whitelists.version", 1 << 31)
        if ref.name in seen:
            raise InvalidArgumentError(
                f"whitelist {ref.name!r} is listed twice", argument="whitelists"
            )
        seen.add(ref.name)
    return refs


def policy_from_rows(
    policy_name: str, row: PolicyVersionRow, refs: Iterable[tuple[str, int | None]]
) -> Policy:
    secure_boot = None
    if row.secure_boot is not None:
        sb = row.secure_boot
        secure_boot = SecureBootRequirements(
            require_enabled=bool(sb["require_enabled"]),
            dbx_must_contain=tuple(bytes.fromhex(d) for d in sb["dbx_must_contain"]),
            allowed_authorities=tuple(bytes.fromhex(d) for d in sb["allowed_authorities"]),
        )
    return Policy(
        name=policy_name,
        version=row.version,
        combine=Combine(row.combine),
        whitelists=tuple(WhitelistRef(n, v) for n, v in refs),
        banks=tuple(row.banks),
        use_event_log=row.use_event_log,
        secure_boot=secure_boot,
        ima=ImaRequirements(mode=ImaMode(row.ima_mode), bank=row.ima_bank),
        signature_hashes=tuple(row.signature_hashes),
        min_rsa_bits=row.min_rsa_bits,
        min_ecc_bits=row.min_ecc_bits,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
    )


# --------------------------------------------------------------------------- reports


def _check_to_json(check: Check) -> dict[str, Any]:
    if not isinstance(check, Check):
        raise InvalidArgumentError("checks must be Check values", argument="checks")
    out: dict[str, Any] = {
        "id": validate.text(check.id, "checks.id"),
        "component": validate.text(check.component, "checks.component"),
        "status": CheckStatus(check.status).value,
        "reason": validate.text(check.reason, "checks.reason"),
    }
    for key in ("expected", "actual", "bank"):
        value = getattr(check, key)
        if value is not None:
            out[key] = validate.text(value, f"checks.{key}")
    for key in ("pcr", "event_index"):
        value = getattr(check, key)
        if value is not None:
            out[key] = validate.uint(value, f"checks.{key}", 1 << 62)
    return out


def _check_from_json(data: Mapping[str, Any]) -> Check:
    return Check(
        id=data["id"],
        component=data["component"],
        status=CheckStatus(data["status"]),
        reason=data["reason"],
        expected=data.get("expected"),
        actual=data.get("actual"),
        pcr=data.get("pcr"),
        bank=data.get("bank"),
        event_index=data.get("event_index"),
    )


def report_values(report: TrustReport) -> dict[str, Any]:
    """TrustReportRow column values (except ``id`` and ``host_id``)."""
    if not isinstance(report, TrustReport):
        raise InvalidArgumentError("report must be a TrustReport", argument="report")
    try:
        status = TrustStatus(report.status)
    except ValueError as exc:
        raise InvalidArgumentError(f"unknown status {report.status!r}", argument="status") from exc
    pcrs: dict[str, dict[str, str]] = {}
    for bank, values in report.pcrs.items():
        validate.name(bank, "pcrs", length=_SHORT)
        pcrs[bank] = {
            str(validate.uint(index, "pcrs", MAX_PCR + 1)): validate.blob(value, "pcrs").hex()
            for index, value in sorted(values.items())
        }
    whitelists = [
        [validate.name(n, "whitelists"), validate.uint(v, "whitelists", 1 << 31)]
        for n, v in report.whitelists
    ]
    if report.policy_version is not None and report.policy is None:
        raise InvalidArgumentError("policy_version without a policy", argument="policy_version")
    digest = report.event_log_sha256
    return {
        "host": validate.name(report.host, "host"),
        "status": status.value,
        "created_at": validate.utc(report.created_at, "created_at"),
        "policy": None if report.policy is None else validate.name(report.policy, "policy"),
        "policy_version": validate.uint(report.policy_version, "policy_version", 1 << 31),
        "whitelists": whitelists,
        "checks": [_check_to_json(c) for c in report.checks],
        "pcrs": pcrs,
        "reset_count": validate.uint(report.reset_count, "reset_count", _U32),
        "restart_count": validate.uint(report.restart_count, "restart_count", _U32),
        "clock": validate.uint(report.clock, "clock", _U64),
        "firmware_version": validate.uint(report.firmware_version, "firmware_version", _U64),
        "reboot_detected": bool(report.reboot_detected),
        "event_log_sha256": None if digest is None else validate.blob(digest, "event_log_sha256"),
    }


def report_from_row(row: TrustReportRow | RowLike) -> TrustReport:
    return TrustReport(
        host=row.host,
        status=TrustStatus(row.status),
        checks=tuple(_check_from_json(c) for c in row.checks),
        created_at=row.created_at,
        policy=row.policy,
        policy_version=row.policy_version,
        whitelists=tuple((str(n), int(v)) for n, v in row.whitelists),
        pcrs={
            bank: {int(index): bytes.fromhex(value) for index, value in values.items()}
            for bank, values in row.pcrs.items()
        },
        reset_count=row.reset_count,
        restart_count=row.restart_count,
        clock=row.clock,
        firmware_version=row.firmware_version,
        reboot_detected=row.reboot_detected,
        event_log_sha256=row.event_log_sha256,
        report_id=row.id,
    )


# --------------------------------------------------------------------------- audit, users


def audit_from_row(row: AuditRow | RowLike) -> AuditRecord:
    return AuditRecord(
        at=row.at,
        actor=row.actor,
        action=row.action,
        target_type=row.target_type,
        target=row.target,
        outcome=row.outcome,
        details=dict(row.details),
        record_id=row.id,
    )


def user_from_row(row: UserRow | RowLike) -> User:
    return User(
        name=row.name,
        password_hash=row.password_hash,
        roles=tuple(row.roles),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
