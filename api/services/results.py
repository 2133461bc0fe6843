"""`GET /v1/results`: the URL's query language, and the answer as JSON, CSV or Parquet.

    filter=FIELD:OP:VALUE          repeat the parameter to AND filters
    filter=A:OP:V|B:OP:W           `|` inside one filter ORs its clauses
    OP: eq ne gt ge lt le in       `in` takes a comma list: optimizer.name:in:sam,sgd

FIELD is a dotted spec path (`optimizer.rho`, `data.batch_size`, `model.hidden`),
`summary.<metric>` (`summary.final_test_acc`), a job column (`status`, `label`,
`optimizer`, `model`, `dataset`, `seed`, `spec_hash`, `name`, `id`), `tag`,
`benchmark` (a benchmark id; also matches jobs it reused) or `created` (ISO 8601).
A value that reads as a number compares as a number; `true`/`false` as a boolean;
`null` matches a missing field; `[..]`/`{..}` as JSON; anything else as text.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import datetime
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from api.services.comparison import interval, metric_bounds
from api.services.names import (
    CATALOG_COLUMNS,
    SUMMARY_METRICS,
    check_choice,
    check_spec_path,
    check_summary_metrics,
    spec_paths,
    unknown,
)
from sam_core.spec.benchmark import SPEC_SECTIONS
from sam_core.spec.catalog import MAX_SEED
from store.errors import Unprocessable
from store.results import COLUMNS, Condition, Field, Filter, ResultsQuery, summary_keys

OPS = ("eq", "ne", "gt", "ge", "lt", "le", "in")
ORDERED_OPS = ("gt", "ge", "lt", "le")
DEFAULT_METRICS = ("final_test_acc", "final_test_loss", "gen_gap_acc", "gen_gap_loss")
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_SEGMENT = re.compile(r"^[A-Za-z0-9_]+$")
_INTEGER = re.compile(r"^[+-]?\d{1,12}$")
SPECIAL = ("tag", "benchmark", "created")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_field(text: str, *, where: str) -> Field:
    """A field name from the URL, or a 422 naming it and what fields look like."""
    parts = tuple(text.split("."))
    if not all(_SEGMENT.match(p) for p in parts):
        _bad(where, text, "a field is dotted words, such as optimizer.rho")
    if len(parts) == 1 and parts[0] in COLUMNS:
        return Field("column", parts)
    if len(parts) == 1 and parts[0] in SPECIAL:
        return Field(parts[0], parts)
    if parts[0] == "summary" and len(parts) == 2:
        return Field("summary", parts[1:])
    if parts[0] in SPEC_SECTIONS and parts[0] != "tags" and len(parts) > 1:
        check_spec_path(where, parts)
        return Field("spec", parts)
    known = [*COLUMNS, *SPECIAL, *spec_paths(), *(f"summary.{m}" for m in SUMMARY_METRICS)]
    hint = "use a spec path (optimizer.rho), summary.<metric>, tag, benchmark, created, or a "
    unknown(where, text, known, "field", hint + f"job column ({', '.join(COLUMNS)})")


def check_metric_names(*, session: Session, query: ResultsQuery) -> None:
    """Each summary metric the query names (`metrics`, `summary.<m>` fields) must exist.

    A metric exists when every run records it by design, or when a job of the
    team has it in its summary (custom measures' keys); else a 422 with the
    closest names.
    """
    named = [("metrics", m) for m in query.metrics]
    for where, fields in (("group_by", query.group_by), ("fields", query.fields)):
        named += [(where, f.path[0]) for f in fields if f.kind == "summary"]
    for any_of in query.filters:
        named += [("filter", c.field.path[0]) for c in any_of if c.field.kind == "summary"]
    check_summary_metrics(named, lambda: summary_keys(session=session, team_id=query.team_id))


def parse_filter(text: str) -> Filter:
    """`A:op:v|B:op:w` → the OR of its clauses."""
    return tuple(_parse_clause(clause, text) for clause in text.split("|"))


def _parse_clause(clause: str, whole: str) -> Condition:
    pieces = clause.split(":", 2)
    if len(pieces) != 3:
        _bad("filter", whole, f"{clause!r} is not FIELD:OP:VALUE (e.g. optimizer.rho:gt:0.01)")
    name, op, raw = pieces
    field = parse_field(name, where="filter")
    if op not in OPS:
        _bad("filter", whole, f"unknown operator {op!r} in {clause!r}; one of {', '.join(OPS)}")
    texts = raw.split(",") if op == "in" else [raw]
    values = tuple(_typed(field, t, clause, whole) for t in texts)
    ordered = isinstance(values[0], int | float | datetime) and not isinstance(values[0], bool)
    if op in ORDERED_OPS and not ordered:
        _bad("filter", whole, f"{op!r} needs a number (or a time for created) in {clause!r}")
    if field.kind in ("tag", "benchmark") and op not in ("eq", "ne", "in"):
        _bad("filter", whole, f"{name!r} takes eq, ne or in, not {op!r}")
    return Condition(field, op, values)


def _typed(field: Field, text: str, clause: str, whole: str) -> Any:
    if field.kind == "created":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            _bad("filter", whole, f"{text!r} in {clause!r} is not an ISO 8601 time")
    if field.kind == "column" and field.path[0] in CATALOG_COLUMNS:
        check_choice("filter", text, field.path[0])
    if field.kind in ("tag", "benchmark") or (field.kind == "column" and field.path[0] != "seed"):
        return text
    if field.kind == "column":
        if not _INTEGER.match(text) or not 0 <= int(text) <= MAX_SEED:
            _bad("filter", whole, f"seed compares with an integer in [0, 2^31 - 1], not {text!r}")
        return int(text)
    if _NUMBER.match(text):
        if not math.isfinite(number := float(text)):
            _bad("filter", whole, f"{text!r} in {clause!r} is not a finite number")
        return number
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            _bad("filter", whole, f"{text!r} in {clause!r} is not JSON")
    return text


def parse_list(text: str | None, *, where: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def parse_metrics(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    names = parse_list(text, where="metrics") or list(default)
    for name in names:
        if not _SEGMENT.match(name):
            _bad("metrics", name, "a metric is a summary key, such as final_test_acc")
    return tuple(names)


def add_intervals(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 95% interval of each group mean, from the database's n, mean and std: a t
    interval, on the logit scale for bounded metrics (`comparison.interval`)."""
    for group in groups:
        for name, m in group["metrics"].items():
            low, high = interval(m["n"], m["mean"], m["std"], metric_bounds(name))
            m["ci_low"], m["ci_high"] = low, high
    return groups


def group_table(groups: list[dict[str, Any]], keys: list[str], metrics: tuple[str, ...]) -> Any:
    """Groups as flat rows: the keys, `jobs`, then `<metric>_<statistic>` columns."""
    columns = [*keys, "jobs"]
    columns += [f"{m}_{s}" for m in metrics for s in ("n", "mean", "std", "min", "max")]
    columns += [f"{m}_{s}" for m in metrics for s in ("ci_low", "ci_high")]
    rows = []
    for g in groups:
        row = {**g["key"], "jobs": g["jobs"]}
        for m, st in g["metrics"].items():
            row.update({f"{m}_{s}": v for s, v in st.items()})
        rows.append(row)
    return columns, rows


def row_table(items: list[dict[str, Any]], fields: list[str]) -> Any:
    """Job rows flat: id, label, status, benchmark_id, created_at, seed, fields, metrics."""
    metrics = sorted({m for item in items for m in item["summary"]})
    columns = ["id", "label", "status", "benchmark_id", "created_at", "seed", *fields, *metrics]
    rows = []
    for item in items:
        row = {k: item[k] for k in ("id", "label", "status", "benchmark_id", "seed")}
        row["created_at"] = item["created_at"].isoformat()
        row.update(item["fields"])
        row.update(item["summary"])
        rows.append(row)
    return columns, rows


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in columns])
    return out.getvalue().encode()


def to_parquet(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    arrays = [_arrow_column([row.get(c) for row in rows]) for c in columns]
    table = pa.Table.from_arrays(arrays, names=columns)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _arrow_column(values: list[Any]) -> Any:
    """Numbers as float64 (ints as int64), anything mixed or nested as JSON text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.int64())
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.bool_())
    return pa.array([None if v is None else _cell(v) for v in values], type=pa.string())


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


def _bad(where: str, value: str, msg: str) -> NoReturn:
    raise Unprocessable(f"{where}={value!r}: {msg}", errors=[{"loc": where, "msg": msg}])
