"""studies: Optuna-driven hyperparameter studies, their trials, and the `pruned` job end

On PostgreSQL also the schema `optuna`, where Optuna's RDBStorage keeps its tables.

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # Optuna's own tables live there
        op.execute("CREATE SCHEMA IF NOT EXISTS optuna")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("stop_reason", sa.Text(), nullable=True))
    op.create_table(
        "studies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("body", JSON, nullable=False),
        sa.Column("optuna_name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("benchmark_id", sa.String(length=32), nullable=True),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("best_value", sa.Float(), nullable=True),
        sa.Column("best_trial", sa.Integer(), nullable=True),
        sa.Column("best_params", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["benchmark_id"],
            ["benchmarks.id"],
            name=op.f("fk_studies_benchmark_id_benchmarks"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studies")),
        sa.UniqueConstraint("optuna_name", name=op.f("uq_studies_optuna_name")),
    )
    op.create_index("ix_studies_team_created", "studies", ["team_id", "created_at", "id"])
    op.create_index(op.f("ix_studies_status"), "studies", ["status"])
    op.create_index(op.f("ix_studies_benchmark_id"), "studies", ["benchmark_id"])
    op.create_table(
        "study_trials",
        sa.Column("study_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("grad_evals", sa.Float(), nullable=True),
        sa.Column("reported_step", sa.BigInteger(), nullable=False),
        sa.Column("reused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["studies.id"],
            name=op.f("fk_study_trials_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_study_trials_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("study_id", "number", name=op.f("pk_study_trials")),
    )
    op.create_index(op.f("ix_study_trials_job_id"), "study_trials", ["job_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SCHEMA IF EXISTS optuna CASCADE")
    op.drop_table("study_trials")
    op.drop_table("studies")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stop_reason")
