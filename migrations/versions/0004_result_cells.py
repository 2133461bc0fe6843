"""result cells: typed per-job summary metrics and per-configuration rollups for grouped results

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

`job_results` holds each job's cell (team, status, optimizer, label, model,
data set, benchmark, ρ, base lr, typed) and `job_result_metrics` its numeric
summary values as typed rows (job, metric, value). `result_cells` rolls them up
per cell: a row of metric '' counts the cell's jobs, a row per metric holds
count, mean, the corrected two-pass sum of squared deviations (Chan, Golub &
LeVeque 1983, eq. 1.7), min and max.

On PostgreSQL a row trigger on `jobs` keeps the per-job rows exact in the
writing transaction (it runs only when a watched column changes, never for
heartbeats or progress) and notes the cells it touched in `result_dirty`;
`flatlab_results_refresh(team)`, which a grouped query calls first, recomputes
those cells from their jobs' rows. Writers touch only their job's rows and
append to `result_dirty`, so they never wait on one another; refreshes of one
team take turns on an advisory lock. The upgrade backfills all of it. SQLite
(embedded) has the tables, empty, and answers from the JSON.

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
WATCHED = ("team_id", "status", "optimizer", "label", "model", "dataset", "benchmark_id")
CHANGED = " OR ".join(
    [f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED]
    + [f"OLD.{c}::jsonb IS DISTINCT FROM NEW.{c}::jsonb" for c in ("spec", "summary")]
)
# Lateral subqueries (OFFSET 0 keeps them from being flattened into joins) probe the
# indexes once per cell or job: the planner cannot size the CTEs, and a hash join
# would read every job's rows.
RECOMPUTED = "SELECT metric, value FROM job_result_metrics x WHERE x.cell_key = r.cell_key"
JOINED = (
    "SELECT a.cell_key, x.metric, x.value FROM a CROSS JOIN LATERAL ("
    "SELECT metric, value FROM job_result_metrics x "
    "WHERE x.job_id = a.job_id AND x.cell_key = a.cell_key OFFSET 0) x"
)


def _cols(alias: str) -> str:
    return ", ".join(f"{alias}.{d.strip()}" for d in DIMS.split(","))


def _two_pass(values: str, keys: str) -> str:
    """Per `keys` of `values`: n, mean, corrected two-pass M2, min, max."""
    return f"""
    SELECT {keys}, count(*) AS n, avg(value) AS mean,
      sum((value - m) * (value - m)) - sum(value - m) * sum(value - m) / count(*) AS m2,
      min(value) AS lo, max(value) AS hi
    FROM (SELECT v.*, avg(v.value) OVER (PARTITION BY {keys}) AS m FROM ({values}) v) w
    GROUP BY {keys}"""


FUNCTIONS = [
    # A JSON number as float8; NULL for anything else (or past float8's range).
    """
CREATE FUNCTION flatlab_number(v jsonb) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'number' AND abs((v #>> '{}')::numeric) < 1e308
    THEN (v #>> '{}')::float8 END
$$""",
    # A job's cell: its key (md5 of the dimensions) and the dimensions, typed.
    """
CREATE FUNCTION flatlab_job_cell(j jobs, OUT cell_key text, OUT rho float8, OUT lr float8)
LANGUAGE sql STABLE AS $$
  SELECT md5(jsonb_build_array(j.team_id, j.status, j.optimizer, j.label, j.model, j.dataset,
      j.benchmark_id, r, l)::text), r, l
  FROM (SELECT flatlab_number(j.spec::jsonb #> '{optimizer,rho}') AS r,
               flatlab_number(j.spec::jsonb #> '{optimizer,base,lr}') AS l) x
$$""",
    """
CREATE FUNCTION flatlab_add_job_results(j jobs) RETURNS void LANGUAGE sql VOLATILE AS $$
  WITH c AS (SELECT * FROM flatlab_job_cell(j)),
  r AS (
    INSERT INTO job_results (job_id, cell_key, team_id, status, optimizer, label, model,
        dataset, benchmark_id, rho, lr)
      SELECT j.id, c.cell_key, j.team_id, j.status, j.optimizer, j.label, j.model,
        j.dataset, j.benchmark_id, c.rho, c.lr FROM c),
  m AS (
    INSERT INTO job_result_metrics (job_id, metric, value, cell_key)
      SELECT j.id, e.key, flatlab_number(e.value), c.cell_key
      FROM c, jsonb_each(CASE WHEN jsonb_typeof(j.summary::jsonb) = 'object'
        THEN j.summary::jsonb ELSE '{}'::jsonb END) e
      WHERE flatlab_number(e.value) IS NOT NULL AND e.key <> '')  -- '' names the count row
  INSERT INTO result_dirty (team_id, cell_key, job_id, added)
    SELECT j.team_id, c.cell_key, j.id, true FROM c;
$$""",
    # Row trigger: touches only the job's own rows and appends to result_dirty (no
    # unique key there), so it never waits on another transaction's rows or locks.
    """
CREATE FUNCTION flatlab_job_results() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO result_dirty (team_id, cell_key, job_id, added)
      SELECT team_id, cell_key, job_id, false FROM job_results WHERE job_id = OLD.id;
    DELETE FROM job_result_metrics WHERE job_id = OLD.id;
    DELETE FROM job_results WHERE job_id = OLD.id;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM flatlab_add_job_results(NEW);
  ELSE
    DELETE FROM metric_points WHERE job_id = OLD.id;
  END IF;
  RETURN NULL;
END
$$""",
    # Brings the team's cells up to date with the entries written since the last
    # refresh: a cell a job left (or without rows yet) is recomputed from its jobs'
    # rows; a cell jobs only joined merges their values in (Chan, Golub & LeVeque
    # 1979: n = n_a + n_b, δ = m_b − m_a, m = m_a + δ·n_b/n, M2 = M2_a + M2_b +
    # δ²·n_a·n_b/n). One statement, so one snapshot: the entries it consumes are
    # exactly those of the writes whose rows it reads. Refreshes of a team take
    # turns on an advisory lock taken first (the caller holds no lock writers wait
    # for, so waits cannot cycle). No JIT: the planner cannot size the CTEs, and its
    # guesses made compiling cost seconds for a statement that runs in milliseconds.
    f"""
CREATE FUNCTION flatlab_results_refresh(team varchar) RETURNS integer
LANGUAGE plpgsql VOLATILE SET jit = off AS $$
DECLARE
  written integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('flatlab_results:' || team, 0));
  WITH d AS (
    DELETE FROM result_dirty WHERE team_id = team RETURNING cell_key, job_id, added),
  r AS (
    SELECT cell_key FROM d WHERE NOT added
    UNION
    SELECT d.cell_key FROM d WHERE NOT EXISTS (
      SELECT 1 FROM result_cells c WHERE c.cell_key = d.cell_key AND c.metric = '')),
  a AS (
    SELECT DISTINCT d.cell_key, d.job_id FROM d CROSS JOIN LATERAL (
      SELECT 1 FROM job_results j WHERE j.job_id = d.job_id AND j.cell_key = d.cell_key
      OFFSET 0) j
    WHERE d.added AND d.cell_key NOT IN (SELECT cell_key FROM r)),
  dims AS (
    SELECT r.cell_key, x.* FROM r CROSS JOIN LATERAL (
      SELECT {DIMS}, count(*) AS jobs FROM job_results j WHERE j.cell_key = r.cell_key
      GROUP BY {DIMS} OFFSET 0) x),
  fresh AS (
    SELECT r.cell_key, f.* FROM r CROSS JOIN LATERAL ({_two_pass(RECOMPUTED, "metric")}) f),
  joined AS ({_two_pass(JOINED, "cell_key, metric")}),
  gone AS (
    DELETE FROM result_cells c WHERE c.cell_key IN (SELECT cell_key FROM r)
      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.cell_key = c.cell_key AND f.metric = c.metric)
      AND NOT (c.metric = '' AND c.cell_key IN (SELECT cell_key FROM dims))),
  new_rows AS (
    SELECT cell_key, '' AS metric, {DIMS}, jobs, NULL::integer AS n, NULL::float8 AS mean,
      NULL::float8 AS m2, NULL::float8 AS lo, NULL::float8 AS hi FROM dims
    UNION ALL
    SELECT f.cell_key, f.metric, {_cols("c")}, f.n, f.n, f.mean, f.m2, f.lo, f.hi
    FROM fresh f JOIN dims c ON c.cell_key = f.cell_key
    UNION ALL
    SELECT c.cell_key, '', {_cols("c")}, c.jobs + j.jobs, NULL, NULL, NULL, NULL, NULL
    FROM (SELECT cell_key, count(*) AS jobs FROM a GROUP BY cell_key) j
    JOIN result_cells c ON c.cell_key = j.cell_key AND c.metric = ''
    UNION ALL
    SELECT b.cell_key, b.metric, {_cols("c")}, coalesce(o.n, 0) + b.n, coalesce(o.n, 0) + b.n,
      CASE WHEN o.n IS NULL THEN b.mean
        ELSE o.mean + (b.mean - o.mean) * b.n / (o.n + b.n) END,
      CASE WHEN o.n IS NULL THEN b.m2
        ELSE o.m2 + b.m2 + (b.mean - o.mean) * (b.mean - o.mean) * o.n * b.n / (o.n + b.n) END,
      least(o.min, b.lo), greatest(o.max, b.hi)
    FROM joined b JOIN result_cells c ON c.cell_key = b.cell_key AND c.metric = ''
    LEFT JOIN result_cells o ON o.cell_key = b.cell_key AND o.metric = b.metric)
  INSERT INTO result_cells (cell_key, metric, {DIMS}, jobs, n, mean, m2, min, max)
    SELECT * FROM new_rows
    ON CONFLICT (cell_key, metric) DO UPDATE SET jobs = excluded.jobs, n = excluded.n,
      mean = excluded.mean, m2 = excluded.m2, min = excluded.min, max = excluded.max;
  GET DIAGNOSTICS written = ROW_COUNT;
  RETURN written;
END
$$""",
    """
CREATE TRIGGER flatlab_job_results_written AFTER INSERT OR DELETE ON jobs
  FOR EACH ROW EXECUTE FUNCTION flatlab_job_results()""",
    # Heartbeats and progress set none of these columns: the trigger does not run.
    f"""
CREATE TRIGGER flatlab_job_results_updated
  AFTER UPDATE OF {", ".join((*WATCHED, "spec", "summary"))} ON jobs
  FOR EACH ROW WHEN ({CHANGED}) EXECUTE FUNCTION flatlab_job_results()""",
    # Backfill: every job already stored, its cell computed at once.
    "SELECT flatlab_add_job_results(j) FROM jobs j",
    "SELECT flatlab_results_refresh(t.team_id) FROM (SELECT DISTINCT team_id FROM jobs) t",
]

DROP = [
    "DROP TRIGGER IF EXISTS flatlab_job_results_updated ON jobs",
    "DROP TRIGGER IF EXISTS flatlab_job_results_written ON jobs",
    "DROP FUNCTION IF EXISTS flatlab_results_refresh(varchar)",
    "DROP FUNCTION IF EXISTS flatlab_job_results()",
    "DROP FUNCTION IF EXISTS flatlab_add_job_results(jobs)",
    "DROP FUNCTION IF EXISTS flatlab_job_cell(jobs)",
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
        "job_results",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("cell_key", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("optimizer", sa.String(length=50), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("dataset", sa.String(length=50), nullable=False),
        sa.Column("benchmark_id", sa.String(length=32), nullable=True),
        sa.Column("rho", sa.Float(), nullable=True),
        sa.Column("lr", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_results")),
    )
    op.create_index("ix_job_results_cell_key", "job_results", ["cell_key"])
    op.create_table(
        "result_dirty",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("cell_key", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("added", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_dirty")),
    )
    op.create_index("ix_result_dirty_team_id", "result_dirty", ["team_id"])
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
    op.drop_index("ix_result_dirty_team_id", table_name="result_dirty")
    op.drop_table("result_dirty")
    op.drop_index("ix_job_results_cell_key", table_name="job_results")
    op.drop_table("job_results")
    op.drop_index("ix_job_result_metrics_cell_metric", table_name="job_result_metrics")
    op.drop_table("job_result_metrics")
    op.drop_index("ix_result_cells_team_metric", table_name="result_cells")
    op.drop_table("result_cells")
    with op.batch_alter_table("metric_points") as batch:
        batch.create_foreign_key(
            "fk_metric_points_job_id_jobs", "jobs", ["job_id"], ["id"], ondelete="CASCADE"
        )
