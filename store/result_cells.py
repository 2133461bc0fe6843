"""Grouped results from the per-configuration rollup (`result_cells`), on PostgreSQL.

A grouped query whose group keys and filters all name cell columns (status,
optimizer, label, model, data set, benchmark, ρ, base lr) reads one row per
(cell, metric) instead of every job, so its cost follows the number of
configurations, not of jobs; the cells whose jobs changed since the last
read are recomputed first (`refresh_cells`), at a cost that follows those
cells' sizes. Cells merge into groups with the pairwise update
of Chan, Golub & LeVeque (1979; 1983 eq. 2.1): for cells c with count n_c,
mean m_c and M2_c = Σ(x − m_c)², the group's mean is m = Σ n_c m_c / N and
M2 = Σ M2_c + Σ n_c (m_c − m)² − (Σ n_c (m_c − m))² / N, the last term the
same two-pass correction the per-job query applies. Other queries return None
and are answered from the jobs' JSON (`store.results`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

from store.models import ResultCell, ResultDirty

if TYPE_CHECKING:
    from store.results import Condition, Field, ResultsQuery

CELL_COLUMNS: dict[tuple[str, tuple[str, ...]], Any] = {
    ("column", ("status",)): ResultCell.status,
    ("column", ("optimizer",)): ResultCell.optimizer,
    ("column", ("label",)): ResultCell.label,
    ("column", ("model",)): ResultCell.model,
    ("column", ("dataset",)): ResultCell.dataset,
    ("column", ("benchmark_id",)): ResultCell.benchmark_id,
    ("benchmark", ()): ResultCell.benchmark_id,
    ("spec", ("optimizer", "name")): ResultCell.optimizer,
    ("spec", ("optimizer", "label")): ResultCell.label,
    ("spec", ("model", "name")): ResultCell.model,
    ("spec", ("data", "name")): ResultCell.dataset,
    ("spec", ("optimizer", "rho")): ResultCell.rho,
    ("spec", ("optimizer", "base", "lr")): ResultCell.lr,
}
NUMERIC = (ResultCell.rho, ResultCell.lr)


def query_groups_from_cells(
    *, session: Session, query: ResultsQuery
) -> list[dict[str, Any]] | None:
    """`store.results.query_groups`'s answer from the rollup; None when it cannot answer.

    Each group is
    `{"key": {name: value}, "jobs": int, "metrics": {metric: {n, mean, std, min, max}}}`,
    std the sample std (ddof=1), None below two values.
    """
    from store.results import _name

    keys = [_column(f, group=True) for f in query.group_by]
    where = _where(query)
    if any(k is None for k in keys) or where is None or "" in query.metrics:
        return None
    refresh_cells(session=session, team_id=query.team_id)
    metrics = list(query.metrics)
    stmt = (
        select(*keys, ResultCell.metric, ResultCell.jobs, ResultCell.n, ResultCell.mean)
        .add_columns(ResultCell.m2, ResultCell.min, ResultCell.max)
        .where(ResultCell.team_id == query.team_id, ResultCell.metric.in_(["", *metrics]))
        .where(*where)
        .order_by(*keys)
    )
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    if not keys:
        groups[()] = {"jobs": 0, "cells": {m: [] for m in metrics}}
    for row in session.execute(stmt):
        key = tuple(row[: len(keys)])
        group = groups.setdefault(key, {"jobs": 0, "cells": {m: [] for m in metrics}})
        metric, jobs, *stats = row[len(keys) :]
        if metric == "":
            group["jobs"] += int(jobs)
        else:
            group["cells"][metric].append(stats)
    names = [_name(f) for f in query.group_by]
    return [
        {
            "key": dict(zip(names, key, strict=True)),
            "jobs": group["jobs"],
            "metrics": {m: merge_cells(group["cells"][m]) for m in metrics},
        }
        for key, group in groups.items()
    ]


def refresh_cells(*, session: Session, team_id: str) -> int:
    """Recompute the team's cells whose jobs changed since; returns how many (0: none were).

    Runs in the caller's transaction and is kept when the caller commits (a
    rollback leaves the cells to the next read). That transaction must not hold
    locks that writers of jobs wait for: it takes the team's refresh lock (held
    to commit), so a concurrent refresh of the same team waits for this one.
    """
    pending = select(exists().where(ResultDirty.team_id == team_id))
    if not session.scalar(pending):
        return 0
    return int(session.scalar(select(func.flatlab_results_refresh(team_id))) or 0)


def merge_cells(cells: list[Any]) -> dict[str, Any]:
    """Count, mean, sample std, min and max of the union of cells `(n, mean, m2, min, max)`."""
    n = sum(int(c[0]) for c in cells)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    mean = math.fsum(int(c[0]) * float(c[1]) for c in cells) / n
    spread = math.fsum(float(c[2]) for c in cells)
    spread += math.fsum(int(c[0]) * (float(c[1]) - mean) ** 2 for c in cells)
    residual = math.fsum(int(c[0]) * (float(c[1]) - mean) for c in cells)
    std = None
    if n >= 2:
        std = math.sqrt(max((spread - residual * residual / n) / (n - 1), 0.0))
    low = min(float(c[3]) for c in cells)
    high = max(float(c[4]) for c in cells)
    return {"n": n, "mean": mean, "std": std, "min": low, "max": high}


def _column(f: Field, *, group: bool = False) -> Any:
    column = CELL_COLUMNS.get((f.kind, tuple(f.path)))
    if f.kind == "benchmark" and not group:
        return None  # a benchmark filter reads the job ↔ benchmark links, not the cell
    return column


def _where(query: ResultsQuery) -> list[ColumnElement[bool]] | None:
    out: list[ColumnElement[bool]] = []
    for any_of in query.filters:
        tests = [_condition(c) for c in any_of]
        known = [t for t in tests if t is not None]
        if len(known) < len(tests):
            return None
        out.append(or_(*known))
    return out


def _condition(c: Condition) -> ColumnElement[bool] | None:
    """A filter on a cell column, with the meaning `store.results` gives it; None otherwise."""
    from store.results import _compare

    column = _column(c.field)
    if column is None:
        return None
    if c.field.kind == "column":
        return _compare(column, c.op, c.values)
    if all(v is None for v in c.values):  # a spec field absent or null
        return column.is_not(None) if c.op == "ne" else column.is_(None)
    numeric = any(column is n for n in NUMERIC)
    wanted = float if numeric else str
    if not all(isinstance(v, wanted) and not isinstance(v, bool) for v in c.values):
        return None
    return _compare(column, c.op, c.values)
