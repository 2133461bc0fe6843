"""How a page of metric series is written: `points`, `columns` or Arrow.

- `points` (the default): `{"metrics": {name: [{step, epoch, value, time}, …]}}`,
  one JSON object a point, `time` an ISO 8601 string.
- `columns`: `{"series": {name: {"step": […], "epoch": […], "value": […],
  "unix_time": […]}}}`, one JSON array a column: no per-point objects to build or
  parse, which is what long histories need. `unix_time` is seconds since the
  epoch (UTC).
- `arrow` (or `Accept: application/vnd.apache.arrow.stream`): an Arrow IPC stream
  of one long table, columns `name, step, epoch, value, time` (timestamp, µs,
  UTC); `total_points`, `next_cursor` and `downsampled` travel in its schema
  metadata and in the `X-Total-Points` (JSON), `X-Next-Cursor` and
  `X-Downsampled` headers. `pyarrow.ipc.open_stream(body).read_all()` reads it.

In the JSON formats a NaN or infinite value is null; Arrow keeps NaN and
infinity as they are (a stored NaN is a null there too: the store keeps NaN as NULL).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import Response
from pydantic_core import to_json

from api.schemas import as_utc
from api.services.metrics import SeriesPage

ARROW_STREAM = "application/vnd.apache.arrow.stream"
MetricsFormat = Literal["points", "columns", "arrow"]


def choose_format(format: MetricsFormat | None, accept: str | None) -> MetricsFormat:
    """The `format` parameter if given, else Arrow when the Accept header asks for it."""
    if format is not None:
        return format
    return "arrow" if accept and ARROW_STREAM in accept else "points"


def render(job_id: str, page: SeriesPage, format: MetricsFormat) -> Response:
    """The response body of one page in `format` (see the module docstring)."""
    if format == "arrow":
        return _arrow(job_id, page)
    body = columns_body(job_id, page) if format == "columns" else points_body(job_id, page)
    return Response(to_json(body, inf_nan_mode="null"), media_type="application/json")


def points_body(job_id: str, page: SeriesPage) -> dict[str, Any]:
    """`MetricsPublic`'s JSON, built from the rows as plain dicts (no model a point)."""
    metrics = {
        name: [
            {"step": step, "epoch": epoch, "value": value, "time": as_utc(time)}
            for _, step, epoch, value, time in rows
        ]
        for name, rows in page.points.items()
    }
    return {"job_id": job_id, "metrics": metrics, **_page_fields(page)}


def columns_body(job_id: str, page: SeriesPage) -> dict[str, Any]:
    """`MetricColumnsPublic`'s JSON: per series, one array a column."""
    series = {}
    for name, rows in page.points.items():
        _, steps, epochs, values, times = zip(*rows, strict=True)
        series[name] = {
            "step": steps,
            "epoch": epochs,
            "value": values,
            "unix_time": [as_utc(t).timestamp() for t in times],
        }
    return {"job_id": job_id, "format": "columns", "series": series, **_page_fields(page)}


def _page_fields(page: SeriesPage) -> dict[str, Any]:
    return {
        "total_points": page.total_points,
        "next_cursor": page.next_cursor,
        "downsampled": page.downsampled,
    }


def _arrow(job_id: str, page: SeriesPage) -> Response:
    import pyarrow as pa  # only here: the JSON formats need none of it

    rows = [row for series in page.points.values() for row in series]
    names, steps, epochs, values, times = zip(*rows, strict=True) if rows else ([],) * 5
    table = pa.table(
        {
            "name": pa.array(names, pa.string()).dictionary_encode(),
            "step": pa.array(steps, pa.int64()),
            "epoch": pa.array(epochs, pa.float64()),
            "value": pa.array(values, pa.float64()),
            "time": pa.array([as_utc(t) for t in times], pa.timestamp("us", tz="UTC")),
        }
    )
    meta = {
        "job_id": job_id,
        "total_points": json.dumps(page.total_points),
        "next_cursor": page.next_cursor or "",
        "downsampled": json.dumps(page.downsampled),
    }
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    headers = {"X-Total-Points": meta["total_points"], "X-Downsampled": meta["downsampled"]}
    if page.next_cursor:
        headers["X-Next-Cursor"] = page.next_cursor
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM, headers=headers)
