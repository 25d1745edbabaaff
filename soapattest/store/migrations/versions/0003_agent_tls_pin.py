"""Pinned TLS certificate fingerprint of each host's agent (current and history).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("agent_tls_pin", sa.String(length=64), nullable=True))
    with op.batch_alter_table("host_identity_history") as batch:
        batch.add_column(sa.Column("agent_tls_pin", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("host_identity_history") as batch:
        batch.drop_column("agent_tls_pin")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("agent_tls_pin")
