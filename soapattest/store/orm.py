"""SQLAlchemy tables of the store. These classes never leave ``soapattest.store``:
repositories convert rows to the frozen dataclasses of :mod:`soapattest.model`
(``convert.py``).

Conventions: every time is a :class:`UtcDateTime`; names are at most 255
characters; soft-deleted objects keep their row with ``deleted_at`` set, and a
partial unique index makes names unique among active rows only. Versioned
objects (whitelists, policies) have one row per name plus one immutable row
per version. Trust reports and the audit log are append-only: triggers created
by the migration refuse UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from soapattest.store.coltypes import UInt64, UtcDateTime

NAME_LENGTH = 255

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Row ids of tables that grow without bound: 64-bit on PostgreSQL, INTEGER PRIMARY KEY
# (the 64-bit rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

_ACTIVE = text("deleted_at IS NULL")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON(), bytes: LargeBinary()}


def _name(**kwargs: Any) -> Any:
    return mapped_column(String(NAME_LENGTH), **kwargs)


class HostRow(Base):
    """One registration of a host; the current TPM identity and quote state are inline."""

    __tablename__ = "hosts"
    __table_args__ = (
        Index(
            "uq_hosts_active_name",
            "name",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("ix_hosts_pool", "pool"),
        Index("ix_hosts_policy", "policy"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = _name()
    agent_url: Mapped[str] = mapped_column(Text)
    pool: Mapped[str | None] = _name()
    policy: Mapped[str | None] = _name()
    labels: Mapped[dict[str, Any]]
    description: Mapped[str] = mapped_column(Text)
    ek_public: Mapped[bytes | None]
    ek_certificate: Mapped[bytes | None]
    ak_public: Mapped[bytes | None]
    ak_name: Mapped[bytes | None]
    qualified_signer: Mapped[bytes | None]
    agent_tls_pin: Mapped[str | None] = mapped_column(String(64))
    activated_at: Mapped[datetime | None]
    identity_since: Mapped[datetime | None]
    quote_clock: Mapped[int | None] = mapped_column(UInt64())
    quote_reset_count: Mapped[int | None] = mapped_column(BigInteger)
    quote_restart_count: Mapped[int | None] = mapped_column(BigInteger)
    quote_firmware_version: Mapped[int | None] = mapped_column(UInt64())
    quote_safe: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class HostIdentityHistoryRow(Base):
    """A TPM identity a host no longer has: valid from ``valid_from`` to ``superseded_at``."""

    __tablename__ = "host_identity_history"
    __table_args__ = (Index("ix_host_identity_history_host_id", "host_id", "superseded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"))
    ek_public: Mapped[bytes]
    ek_certificate: Mapped[bytes]
    ak_public: Mapped[bytes]
    ak_name: Mapped[bytes]
    qualified_signer: Mapped[bytes]
    agent_tls_pin: Mapped[str | None] = mapped_column(String(64))
    activated_at: Mapped[datetime]
    valid_from: Mapped[datetime]
    superseded_at: Mapped[datetime]


class PoolRow(Base):
    """A pool's policy assignment (pools themselves exist through their hosts)."""

    __tablename__ = "pools"

    name: Mapped[str] = _name(primary_key=True)
    policy: Mapped[str | None] = _name()
    updated_at: Mapped[datetime]


class WhitelistRow(Base):
    __tablename__ = "whitelists"
    __table_args__ = (
        Index(
            "uq_whitelists_active_name",
            "name",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = _name()
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class WhitelistVersionRow(Base):
    """One immutable version; its entries are a full copy (no deltas)."""

    __tablename__ = "whitelist_versions"
    __table_args__ = (UniqueConstraint("whitelist_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    whitelist_id: Mapped[int] = mapped_column(ForeignKey("whitelists.id"))
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    source_host: Mapped[str] = _name()
    created_at: Mapped[datetime]
    created_by: Mapped[str] = _name()


class WhitelistEntryRow(Base):
    __tablename__ = "whitelist_entries"
    __table_args__ = (Index("ix_whitelist_entries_version_id", "version_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("whitelist_versions.id"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    bank: Mapped[str] = mapped_column(String(16))
    pcr: Mapped[int] = mapped_column(Integer)
    digest: Mapped[bytes]
    path: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)


class PolicyRow(Base):
    __tablename__ = "policies"
    __table_args__ = (
        Index(
            "uq_policies_active_name",
            "name",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = _name()
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class PolicyVersionRow(Base):
    """One immutable version of a policy definition."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    version: Mapped[int] = mapped_column(Integer)
    combine: Mapped[str] = mapped_column(String(16))
    banks: Mapped[list[str]] = mapped_column(JSON)
    use_event_log: Mapped[bool] = mapped_column(Boolean)
    secure_boot: Mapped[dict[str, Any] | None]
    ima_mode: Mapped[str] = mapped_column(String(16))
    ima_bank: Mapped[str] = mapped_column(String(16))
    signature_hashes: Mapped[list[str]] = mapped_column(JSON)
    min_rsa_bits: Mapped[int] = mapped_column(Integer)
    min_ecc_bits: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = _name()


class PolicyWhitelistRefRow(Base):
    """A whitelist a policy version uses; ``whitelist_version`` NULL means the latest."""

    __tablename__ = "policy_whitelist_refs"
    __table_args__ = (
        UniqueConstraint("policy_version_id", "position"),
        Index("ix_policy_whitelist_refs_whitelist_name", "whitelist_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    position: Mapped[int] = mapped_column(Integer)
    whitelist_name: Mapped[str] = _name()
    whitelist_version: Mapped[int | None] = mapped_column(Integer)


class TrustReportRow(Base):
    """An immutable trust report (append-only: triggers refuse UPDATE/DELETE)."""

    __tablename__ = "trust_reports"
    __table_args__ = (
        Index("ix_trust_reports_host_id_created_at", "host_id", "created_at", "id"),
        Index("ix_trust_reports_host_created_at", "host", "created_at"),
        Index("ix_trust_reports_created_at", "created_at"),
        Index("ix_trust_reports_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"))
    host: Mapped[str] = _name()
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    policy: Mapped[str | None] = _name()
    policy_version: Mapped[int | None] = mapped_column(Integer)
    whitelists: Mapped[list[Any]] = mapped_column(JSON)
    checks: Mapped[list[Any]] = mapped_column(JSON)
    pcrs: Mapped[dict[str, Any]]
    reset_count: Mapped[int | None] = mapped_column(BigInteger)
    restart_count: Mapped[int | None] = mapped_column(BigInteger)
    clock: Mapped[int | None] = mapped_column(UInt64())
    firmware_version: Mapped[int | None] = mapped_column(UInt64())
    reboot_detected: Mapped[bool] = mapped_column(Boolean)
    event_log_sha256: Mapped[bytes | None]


class NonceRow(Base):
    """A nonce issued to a host for one purpose; consumed at most once, before it expires."""

    __tablename__ = "nonces"
    __table_args__ = (
        UniqueConstraint("host", "purpose", "value"),
        Index("ix_nonces_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    host: Mapped[str] = _name()
    purpose: Mapped[str] = mapped_column(String(64))
    value: Mapped[bytes]
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]


class AuditRow(Base):
    """One audit record (append-only: triggers refuse UPDATE/DELETE)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor_at", "actor", "at"),
        Index("ix_audit_log_target_at", "target", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = _name()
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = _name()
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]]


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = _name(unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EvidenceRow(Base):
    """Evidence bytes (event logs, IMA lists) by SHA-256, stored once however many reports
    refer to them. Immutable: a digest names exactly one content."""

    __tablename__ = "evidence_blobs"

    sha256: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes]
    created_at: Mapped[datetime]
