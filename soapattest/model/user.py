"""Users of the attestation service (authentication and roles)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class User:
    """A user account.

    ``password_hash`` is an opaque, self-describing hash string produced by the
    authentication layer (never a password); it is left out of ``repr`` so it
    does not end up in logs.
    """

    name: str
    password_hash: str = field(repr=False)
    roles: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
