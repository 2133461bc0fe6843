"""The team results database in SQL: filters on spec fields and summary metrics, group-by,
and aggregates computed by the database (PostgreSQL JSONB paths, SQLite json_extract).

A query is plain data (`Condition`s AND-ed, each `Filter` an OR of them) built by
`api.services.results` from the URL; this module turns it into one statement.
A numeric comparison on a JSON field only sees jobs where that field is a number.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session

from store.jobs import decode_cursor, encode_cursor
from store.models import BenchmarkJob, Job

COLUMNS: dict[str, Any] = {
    "id": Job.id,
    "name": Job.name,
    "label": Job.label,
    "status": Job.status,
    "optimizer": Job.optimizer,
    "model": Job.model,
    "dataset": Job.dataset,
    "seed": Job.seed,
    "spec_hash": Job.spec_hash,
    "benchmark_id": Job.benchmark_id,
    "queue": Job.queue,
}
ROW_COLUMNS = ("id", "label", "status", "benchmark_id", "created_at", "seed")
SQL_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class Field:
    """What a filter or group key reads: a column, a spec path, a summary metric, …"""

    kind: str  # column | spec | summary | tag | benchmark | created
    path: tuple[str, ...]


@dataclass(frozen=True)
class Condition:
    field: Field
    op: str  # eq ne gt ge lt le in
    values: tuple[Any, ...]  # typed: float, bool, str, datetime, None, or JSON text of a list


Filter = tuple[Condition, ...]  # OR-ed


@dataclass(frozen=True)
class ResultsQuery:
    team_id: str
    filters: tuple[Filter, ...] = ()  # AND-ed
    group_by: tuple[Field, ...] = ()
    metrics: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    limit: int = 100
    cursor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def query_rows(*, session: Session, query: ResultsQuery) -> tuple[list[dict[str, Any]], str | None]:
    """One page of matching jobs, newest first: id, label, status, chosen fields, summary."""
    dialect = _dialect(session)
    picked = [_json_value(dialect, f).label(f"f{i}") for i, f in enumerate(query.fields)]
    stmt = select(
        Job.id, Job.label, Job.status, Job.benchmark_id, Job.created_at, Job.seed, Job.summary
    ).add_columns(*picked)
    stmt = stmt.where(*_where(dialect, query))
    if query.cursor is not None:
        created_at, job_id = decode_cursor(query.cursor)
        stmt = stmt.where(tuple_(Job.created_at, Job.id) < tuple_(created_at, job_id))
    stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(query.limit + 1)
    rows = list(session.execute(stmt))
    out = []
    for row in rows[: query.limit]:
        item = dict(zip(ROW_COLUMNS, row[:6], strict=True))
        item["fields"] = {
            _name(f): _decode(dialect, row[7 + i]) for i, f in enumerate(query.fields)
        }
        summary = row[6] or {}
        names = query.metrics or sorted(summary)
        item["summary"] = {m: summary.get(m) for m in names}
        out.append(item)
    more = len(rows) > query.limit
    next_cursor = (
        encode_cursor(rows[query.limit - 1][4], rows[query.limit - 1][0]) if more else None
    )
    return out, next_cursor


def query_groups(*, session: Session, query: ResultsQuery) -> list[dict[str, Any]]:
    """Per group of `group_by` values: job count and count/mean/std/min/max of each metric.

    Everything but the t quantile of the interval is computed by the database,
    the same way on both backends. The sample std is a corrected two-pass one
    (Chan, Golub & LeVeque 1983, eq. 1.7): a window gives each row its group's
    mean m, then Σ(x − m)² − (Σ(x − m))²/n over the group. The textbook
    Σx² − n·m² loses every digit when the spread is small next to the values
    (five values near 86400.12 with a spread of 5e-4 gave a std of 0).
    On PostgreSQL a query over configuration fields only (status, optimizer,
    label, model, data set, benchmark, ρ, base lr) is answered from the
    per-configuration rollup instead (`store.result_cells`), with the same figures.
    """
    if _dialect(session) == "postgresql":
        from store.result_cells import query_groups_from_cells

        from_cells = query_groups_from_cells(session=session, query=query)
        if from_cells is not None:
            return from_cells
    return query_groups_from_json(session=session, query=query)


def query_groups_from_json(*, session: Session, query: ResultsQuery) -> list[dict[str, Any]]:
    """`query_groups` computed over every matching job's spec and summary JSON."""
    dialect = _dialect(session)
    keys = [_group_value(dialect, f).label(f"k{i}") for i, f in enumerate(query.group_by)]
    values = [
        _json_number(dialect, Job.summary, (metric,)).label(f"x{j}")
        for j, metric in enumerate(query.metrics)
    ]
    means = [
        func.avg(x).over(partition_by=keys or None).label(f"m{j}") for j, x in enumerate(values)
    ]
    rows = select(*keys, *values, *means).where(*_where(dialect, query)).subquery()
    group_keys = [rows.c[f"k{i}"] for i in range(len(keys))]
    aggregates: list[Any] = [func.count().label("jobs")]
    for j in range(len(query.metrics)):
        x, m = rows.c[f"x{j}"], rows.c[f"m{j}"]
        aggregates += [func.count(x), func.avg(x), func.sum((x - m) * (x - m)), func.sum(x - m)]
        aggregates += [func.min(x), func.max(x)]
    stmt = select(*group_keys, *aggregates).group_by(*group_keys).order_by(*group_keys)
    groups = []
    for row in session.execute(stmt):
        key = {_name(f): _decode(dialect, row[i]) for i, f in enumerate(query.group_by)}
        at = len(keys) + 1
        metrics = {}
        for j, metric in enumerate(query.metrics):
            n, mean, squares, residual, low, high = row[at + 6 * j : at + 6 * j + 6]
            std = _std(int(n), squares, residual)
            metrics[metric] = {"n": int(n), "mean": _f(mean), "std": std, "min": _f(low)}
            metrics[metric]["max"] = _f(high)
        groups.append({"key": key, "jobs": int(row[len(keys)]), "metrics": metrics})
    return groups


def _std(n: int, squares: Any, residual: Any) -> float | None:
    """Sample std (ddof=1) from Σ(x − m)² and Σ(x − m), m the mean as the database summed it."""
    if n < 2 or squares is None:
        return None
    variance = (float(squares) - float(residual) ** 2 / n) / (n - 1)
    return math.sqrt(max(variance, 0.0))


def _where(dialect: str, query: ResultsQuery) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [Job.team_id == query.team_id]
    for any_of in query.filters:
        out.append(or_(*(_condition(dialect, c) for c in any_of)))
    return out


def _condition(dialect: str, c: Condition) -> ColumnElement[bool]:
    kind = c.field.kind
    if kind == "tag":
        has = [_has_tag(dialect, str(v)) for v in c.values]
        return not_(or_(*has)) if c.op == "ne" else or_(*has)
    if kind == "benchmark":
        linked = select(BenchmarkJob.job_id).where(BenchmarkJob.benchmark_id.in_(c.values))
        return Job.id.not_in(linked) if c.op == "ne" else Job.id.in_(linked)
    if kind in ("column", "created"):
        column = Job.created_at if kind == "created" else COLUMNS[c.field.path[0]]
        return _compare(column, c.op, c.values)
    column_json = Job.spec if kind == "spec" else Job.summary
    return _json_condition(dialect, column_json, c.field.path, c.op, c.values)


def _compare(expr: Any, op: str, values: tuple[Any, ...]) -> ColumnElement[bool]:
    if op == "in":
        return expr.in_(values)
    result: ColumnElement[bool] = SQL_OPS[op](expr, values[0])
    return result


def _json_condition(
    dialect: str, column: Any, path: tuple[str, ...], op: str, values: tuple[Any, ...]
) -> ColumnElement[bool]:
    """Typed by the values: numbers compare as numbers, true/false as booleans, else text."""
    if all(v is None for v in values):
        missing = or_(
            _json_key(dialect, column, path).is_(None), _json_type(dialect, column, path) == "null"
        )
        return not_(missing) if op == "ne" else missing
    if all(isinstance(v, float) for v in values):
        return _compare(_json_number(dialect, column, path), op, values)
    if all(isinstance(v, bool) for v in values):
        tests = [_json_type(dialect, column, path) == ("true" if v else "false") for v in values]
        if dialect == "postgresql":
            text = _json_text(dialect, column, path)
            tests = [
                and_(_json_type(dialect, column, path) == "boolean", text == str(v).lower())
                for v in values
            ]
        return not_(or_(*tests)) if op == "ne" else or_(*tests)
    if all(isinstance(v, list | dict) for v in values):
        texts = tuple(json.dumps(v, separators=(",", ":")) for v in values)
        if dialect == "postgresql":
            key = _json_key(dialect, column, path)
            tests = [key == cast(literal(t), JSONB) for t in texts]
        else:
            tests = [_json_key(dialect, column, path) == func.json(t) for t in texts]
        return not_(or_(*tests)) if op == "ne" else or_(*tests)
    return _compare(_json_text(dialect, column, path), op, tuple(str(v) for v in values))


def _sqlite_path(path: tuple[str, ...]) -> str:
    return "$" + "".join(f"[{p}]" if p.isdigit() else f'."{p}"' for p in path)


def _json_key(dialect: str, column: Any, path: tuple[str, ...]) -> Any:
    """The JSON value at `path` (jsonb on PostgreSQL, JSON text on SQLite)."""
    if dialect == "postgresql":
        return cast(column, JSONB).op("#>")(literal(list(path), _text_array()))
    return column.op("->")(_sqlite_path(path))


def _json_text(dialect: str, column: Any, path: tuple[str, ...]) -> Any:
    if dialect == "postgresql":
        return cast(column, JSONB).op("#>>")(literal(list(path), _text_array()))
    return cast(func.json_extract(column, _sqlite_path(path)), Text)


def _json_type(dialect: str, column: Any, path: tuple[str, ...]) -> Any:
    if dialect == "postgresql":
        return func.jsonb_typeof(_json_key(dialect, column, path))
    return func.json_type(column, _sqlite_path(path))


def _json_number(dialect: str, column: Any, path: tuple[str, ...]) -> Any:
    """The number at `path`, NULL where it is absent or not a number."""
    kind = _json_type(dialect, column, path)
    if dialect == "postgresql":
        return case((kind == "number", cast(_json_text(dialect, column, path), Float)))
    value = func.json_extract(column, _sqlite_path(path))
    return case((kind.in_(("integer", "real")), cast(value, Float)))


def _json_value(dialect: str, f: Field) -> Any:
    """A field as a selectable value for rows and group keys (decoded by `_decode`)."""
    if f.kind == "column":
        return COLUMNS[f.path[0]]
    if f.kind == "benchmark":
        return Job.benchmark_id
    if f.kind == "created":
        return Job.created_at
    column = Job.spec if f.kind == "spec" else Job.summary
    return _json_key(dialect, column, f.path)


_group_value = _json_value


def _decode(dialect: str, value: Any) -> Any:
    """SQLite returns JSON text for `->`; PostgreSQL returns the decoded value already."""
    if dialect == "sqlite" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return cast(Job.tags, JSONB).bool_op("@>")(func.jsonb_build_array(tag))
    each = func.json_each(Job.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def _text_array() -> Any:
    return ARRAY(Text)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _name(f: Field) -> str:
    if f.kind in ("spec", "column"):
        return ".".join(f.path)
    if f.kind == "summary":
        return "summary." + ".".join(f.path)
    return f.kind


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def summary_keys(*, session: Session, team_id: str) -> set[str]:
    """Every key any of the team's job summaries holds."""
    if _dialect(session) == "postgresql":
        keys = func.jsonb_object_keys(cast(Job.summary, JSONB))
        is_object = func.jsonb_typeof(cast(Job.summary, JSONB)) == "object"
        stmt = select(keys).where(Job.team_id == team_id, is_object).distinct()
        return set(session.scalars(stmt))
    each = func.json_each(Job.summary).table_valued("key")
    stmt = (
        select(each.c.key)
        .select_from(Job)
        .join(each, literal(True))
        .where(Job.team_id == team_id, func.json_type(Job.summary) == "object")
        .distinct()
    )
    return {str(k) for k in session.scalars(stmt)}
