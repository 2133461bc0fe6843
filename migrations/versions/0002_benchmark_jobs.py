"""benchmark_jobs: the jobs of each benchmark, so a reused job can serve several

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "benchmark_jobs",
        sa.Column("benchmark_id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("reused", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["benchmark_id"],
            ["benchmarks.id"],
            name=op.f("fk_benchmark_jobs_benchmark_id_benchmarks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_benchmark_jobs_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("benchmark_id", "job_id", name=op.f("pk_benchmark_jobs")),
    )
    op.create_index(op.f("ix_benchmark_jobs_job_id"), "benchmark_jobs", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_benchmark_jobs_job_id"), table_name="benchmark_jobs")
    op.drop_table("benchmark_jobs")
