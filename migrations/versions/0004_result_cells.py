"""result cells: typed per-job summary metrics and per-configuration rollups for grouped results

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

`job_result_metrics` holds each job's numeric summary values as typed rows
(job, metric, value). `result_cells` rolls them up per cell, the jobs that share
team, status, optimizer, label, model, data set, benchmark, ρ and base lr: a
row of metric '' counts the cell's jobs, a row per metric holds count, mean,
the corrected two-pass sum of squared deviations (Chan, Golub & LeVeque 1983,
eq. 1.7), min and max. On PostgreSQL, statement-level triggers on `jobs` keep
both exact in the writing transaction (a cell is recomputed from its jobs'
values, under an advisory lock per cell taken in key order), and the upgrade
backfills them; SQLite (embedded) has the tables but answers from the JSON.

`metric_points` loses its foreign key to `jobs`: checked per row, it was about
half the cost of a 1,000-point COPY. `store.metrics.write_metric_points` takes
the job's row in KEY SHARE mode once per batch instead (what the key checked per
point), `store.jobs.delete_job` deletes a job's points, and on PostgreSQL the
delete trigger does too, as the cascade did.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMS = "team_id, status, optimizer, label, model, dataset, benchmark_id, rho, lr"

FUNCTIONS = [
    # A JSON number as float8; NULL for anything else (or past float8's range).
    """
CREATE FUNCTION flatlab_number(v jsonb) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'number' AND abs((v #>> '{}')::numeric) < 1e308
    THEN (v #>> '{}')::float8 END
$$""",
    """
CREATE TYPE flatlab_result_job AS (
  id varchar(32), cell_key varchar(32), team_id varchar(32), status varchar(20),
  optimizer varchar(50), label varchar(100), model varchar(50), dataset varchar(50),
  benchmark_id varchar(32), rho float8, lr float8, summary jsonb)""",
    """
CREATE FUNCTION flatlab_result_job(j jobs) RETURNS flatlab_result_job
LANGUAGE sql STABLE AS $$
  SELECT ROW(j.id, md5(jsonb_build_array(j.team_id, j.status, j.optimizer, j.label, j.model,
      j.dataset, j.benchmark_id, flatlab_number(j.spec::jsonb #> '{optimizer,rho}'),
      flatlab_number(j.spec::jsonb #> '{optimizer,base,lr}'))::text),
    j.team_id, j.status, j.optimizer, j.label, j.model, j.dataset, j.benchmark_id,
    flatlab_number(j.spec::jsonb #> '{optimizer,rho}'),
    flatlab_number(j.spec::jsonb #> '{optimizer,base,lr}'),
    CASE WHEN jsonb_typeof(j.summary::jsonb) = 'object' THEN j.summary::jsonb
      ELSE '{}'::jsonb END)::flatlab_result_job
$$""",
    # Moves jobs out of their old cells and into their new ones, then recomputes
    # every (cell, metric) either side touched from the jobs' values.
    f"""
CREATE FUNCTION flatlab_results_apply(olds flatlab_result_job[], news flatlab_result_job[])
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  k text;
  keys text[];
  metrics text[];
BEGIN
  IF coalesce(cardinality(olds), 0) + coalesce(cardinality(news), 0) = 0 THEN
    RETURN;
  END IF;
  FOR k IN SELECT DISTINCT c.cell_key FROM (
      SELECT cell_key FROM unnest(olds) UNION SELECT cell_key FROM unnest(news)) c
      ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended('flatlab_cell:' || k, 0));
  END LOOP;
  DELETE FROM job_result_metrics m USING unnest(olds) o WHERE m.job_id = o.id;
  UPDATE result_cells c SET jobs = c.jobs - o.n
    FROM (SELECT cell_key, count(*) AS n FROM unnest(olds) GROUP BY cell_key) o
    WHERE c.cell_key = o.cell_key AND c.metric = '';
  DELETE FROM result_cells WHERE metric = '' AND jobs <= 0;
  INSERT INTO result_cells (cell_key, metric, {DIMS}, jobs)
    SELECT cell_key, '', {DIMS}, count(*) FROM unnest(news)
    GROUP BY cell_key, {DIMS}
    ON CONFLICT (cell_key, metric) DO UPDATE SET jobs = result_cells.jobs + excluded.jobs;
  INSERT INTO job_result_metrics (job_id, metric, value, cell_key)
    SELECT n.id, e.key, flatlab_number(e.value), n.cell_key
    FROM unnest(news) n, jsonb_each(n.summary) e WHERE flatlab_number(e.value) IS NOT NULL;
  SELECT array_agg(t.cell_key), array_agg(t.metric) INTO keys, metrics FROM (
    SELECT DISTINCT j.cell_key, e.metric
    FROM (SELECT * FROM unnest(olds) UNION ALL SELECT * FROM unnest(news)) j,
    jsonb_object_keys(j.summary) e(metric)) t;
  DELETE FROM result_cells c USING unnest(keys, metrics) t(cell_key, metric)
    WHERE c.cell_key = t.cell_key AND c.metric = t.metric;
  INSERT INTO result_cells (cell_key, metric, {DIMS}, jobs, n, mean, m2, min, max)
    SELECT s.cell_key, s.metric, {", ".join("c." + d.strip() for d in DIMS.split(","))},
      s.n, s.n, s.mean, s.m2, s.lo, s.hi
    FROM (
      SELECT cell_key, metric, count(*) AS n, avg(value) AS mean,
        sum((value - a) * (value - a)) - sum(value - a) * sum(value - a) / count(*) AS m2,
        min(value) AS lo, max(value) AS hi
      FROM (
        SELECT m.cell_key, m.metric, m.value,
          avg(m.value) OVER (PARTITION BY m.cell_key, m.metric) AS a
        FROM job_result_metrics m JOIN unnest(keys, metrics) t(cell_key, metric)
          ON m.cell_key = t.cell_key AND m.metric = t.metric) v
      GROUP BY cell_key, metric) s
    JOIN result_cells c ON c.cell_key = s.cell_key AND c.metric = '';
END
$$""",
    """
CREATE FUNCTION flatlab_results_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM flatlab_results_apply('{}',
    (SELECT array_agg(flatlab_result_job(n)) FROM new_rows n));
  RETURN NULL;
END
$$""",
    """
CREATE FUNCTION flatlab_results_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM metric_points m USING old_rows o WHERE m.job_id = o.id;
  PERFORM flatlab_results_apply(
    (SELECT array_agg(flatlab_result_job(o)) FROM old_rows o), '{}');
  RETURN NULL;
END
$$""",
    # Heartbeats and progress change neither the cell nor the summary: nothing to do.
    """
CREATE FUNCTION flatlab_results_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  olds flatlab_result_job[];
  news flatlab_result_job[];
BEGIN
  SELECT array_agg(a.o), array_agg(a.n) INTO olds, news FROM (
    SELECT flatlab_result_job(o) AS o, flatlab_result_job(n) AS n
    FROM old_rows o JOIN new_rows n ON n.id = o.id) a
  WHERE (a.o).cell_key <> (a.n).cell_key OR (a.o).summary <> (a.n).summary;
  PERFORM flatlab_results_apply(olds, news);
  RETURN NULL;
END
$$""",
    """
CREATE TRIGGER flatlab_results_inserted AFTER INSERT ON jobs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION flatlab_results_inserted()""",
    """
CREATE TRIGGER flatlab_results_deleted AFTER DELETE ON jobs
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION flatlab_results_deleted()""",
    """
CREATE TRIGGER flatlab_results_updated AFTER UPDATE ON jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION flatlab_results_updated()""",
    # Backfill: every job already stored enters its cell.
    """
SELECT flatlab_results_apply('{}', (SELECT array_agg(flatlab_result_job(j)) FROM jobs j))""",
]

DROP = [
    "DROP TRIGGER IF EXISTS flatlab_results_updated ON jobs",
    "DROP TRIGGER IF EXISTS flatlab_results_deleted ON jobs",
    "DROP TRIGGER IF EXISTS flatlab_results_inserted ON jobs",
    "DROP FUNCTION IF EXISTS flatlab_results_updated()",
    "DROP FUNCTION IF EXISTS flatlab_results_deleted()",
    "DROP FUNCTION IF EXISTS flatlab_results_inserted()",
    "DROP FUNCTION IF EXISTS flatlab_results_apply(flatlab_result_job[], flatlab_result_job[])",
    "DROP FUNCTION IF EXISTS flatlab_result_job(jobs)",
    "DROP TYPE IF EXISTS flatlab_result_job",
    "DROP FUNCTION IF EXISTS flatlab_number(jsonb)",
]


def upgrade() -> None:
    op.create_table(
        "result_cells",
        sa.Column("cell_key", sa.String(length=32), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("optimizer", sa.String(length=50), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("dataset", sa.String(length=50), nullable=False),
        sa.Column("benchmark_id", sa.String(length=32), nullable=True),
        sa.Column("rho", sa.Float(), nullable=True),
        sa.Column("lr", sa.Float(), nullable=True),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=True),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("m2", sa.Float(), nullable=True),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("cell_key", "metric", name=op.f("pk_result_cells")),
    )
    op.create_index("ix_result_cells_team_metric", "result_cells", ["team_id", "metric"])
    op.create_table(
        "job_result_metrics",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("cell_key", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_result_metrics_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "metric", name=op.f("pk_job_result_metrics")),
    )
    op.create_index(
        "ix_job_result_metrics_cell_metric", "job_result_metrics", ["cell_key", "metric"]
    )
    with op.batch_alter_table("metric_points") as batch:
        batch.drop_constraint("fk_metric_points_job_id_jobs", type_="foreignkey")
    if op.get_bind().dialect.name == "postgresql":
        for statement in FUNCTIONS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DROP:
            op.execute(statement)
    op.drop_index("ix_job_result_metrics_cell_metric", table_name="job_result_metrics")
    op.drop_table("job_result_metrics")
    op.drop_index("ix_result_cells_team_metric", table_name="result_cells")
    op.drop_table("result_cells")
    with op.batch_alter_table("metric_points") as batch:
        batch.create_foreign_key(
            "fk_metric_points_job_id_jobs", "jobs", ["job_id"], ["id"], ondelete="CASCADE"
        )
