"""Registered hosts and their TPM identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """The TPM identity bound at registration.

    ``ek_public``/``ak_public`` are TPM2B_PUBLIC bytes; ``ak_name`` is the
    AK's TPM name; ``activated_at`` is when credential activation proved the AK
    lives in the TPM that owns the EK.
    """

    ek_public: bytes
    ek_certificate: bytes
    ak_public: bytes
    ak_name: bytes
    activated_at: datetime
    qualified_signer: bytes = b""
    agent_tls_pin: str = ""  # SHA-256 (hex) of the agent's TLS certificate, when pinned


@dataclass(frozen=True, slots=True)
class QuoteState:
    """Clock state of the host's last verified quote (for regression checks)."""

    clock: int
    reset_count: int
    restart_count: int
    firmware_version: int
    safe: bool = True


@dataclass(frozen=True, slots=True)
class Host:
    """A registered host."""

    name: str
    agent_url: str
    pool: str = ""
    policy: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""
    identity: HostIdentity | None = None
    last_quote: QuoteState | None = None
    created_at: datetime | None = None
