"""handbacks and clock offsets: graceful hand-backs counted apart; each worker's clock offset

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("handbacks", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("workers", sa.Column("clock_offset_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("clock_offset_seconds")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("handbacks")
