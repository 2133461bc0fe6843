"""GET /v1/jobs/{id}/metrics as columns and as Arrow carry what the point format carries."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from flatlab.client import Client, frames
from store.db import session_scope
from store.metrics import write_metric_points
from tests.unit.api.conftest import spec

ARROW = "application/vnd.apache.arrow.stream"


def _job(client: TestClient, app: FastAPI) -> str:
    job_id: str = client.post("/v1/jobs", json=spec()).json()["id"]
    points = [("train_loss", s, s / 10, math.nan if s == 7 else 1.0 / (1 + s)) for s in range(30)]
    points += [("test_acc", s, s / 10, math.inf if s == 20 else s / 100) for s in range(0, 30, 5)]
    with session_scope(app.state.session_factory) as session:
        write_metric_points(session=session, job_id=job_id, points=points)
    return job_id


def _pages(client: TestClient, url: str, **params: Any) -> list[dict[str, Any]]:
    pages, cursor = [], None
    while True:
        body = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert body.status_code == 200, body.text
        pages.append(body.json())
        if (cursor := pages[-1]["next_cursor"]) is None:
            return pages


def _as_rows(page: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(name, step, epoch, value, time as a datetime) of either JSON format."""
    if "metrics" in page:
        return [
            (n, p["step"], p["epoch"], p["value"], datetime.fromisoformat(p["time"]))
            for n, points in page["metrics"].items()
            for p in points
        ]
    return [
        (n, s, e, v, datetime.fromtimestamp(t).astimezone())
        for n, c in page["series"].items()
        for s, e, v, t in zip(c["step"], c["epoch"], c["value"], c["unix_time"], strict=True)
    ]


@pytest.mark.parametrize("params", [{}, {"limit": 7}, {"max_points": 6}, {"since_step": 12}])
def test_columns_hold_the_points_of_the_point_format_page_by_page(
    client: TestClient, app: FastAPI, params: dict[str, Any]
) -> None:
    url = f"/v1/jobs/{_job(client, app)}/metrics"
    points = _pages(client, url, **params)
    columns = _pages(client, url, format="columns", **params)
    assert [p["next_cursor"] for p in columns] == [p["next_cursor"] for p in points]
    for a, b in zip(points, columns, strict=True):
        assert _as_rows(a) == _as_rows(b)  # NaN and infinity: null in both
        assert (a["total_points"], a["downsampled"]) == (b["total_points"], b["downsampled"])
    if params == {"max_points": 6}:
        assert columns[0]["downsampled"] and len(columns[0]["series"]["train_loss"]["step"]) <= 6


def test_arrow_by_format_or_accept_is_the_same_table(client: TestClient, app: FastAPI) -> None:
    url = f"/v1/jobs/{_job(client, app)}/metrics"
    points = client.get(url).json()
    by_param = client.get(url, params={"format": "arrow"})
    by_accept = client.get(url, headers={"Accept": ARROW})
    assert by_param.headers["content-type"] == ARROW and by_param.content == by_accept.content
    table = pa.ipc.open_stream(by_param.content).read_all()
    assert table.column_names == ["name", "step", "epoch", "value", "time"]
    rows = table.to_pylist()
    expected = [(n, p["step"], p["epoch"]) for n, pts in points["metrics"].items() for p in pts]
    assert [(r["name"], r["step"], r["epoch"]) for r in rows] == expected
    values = {(r["name"], r["step"]): r["value"] for r in rows}
    assert values[("train_loss", 7)] is None  # stored NaN: null
    assert values[("test_acc", 20)] == math.inf  # Arrow keeps infinity
    assert values[("train_loss", 3)] == 0.25
    times = [datetime.fromisoformat(p["time"]) for pts in points["metrics"].values() for p in pts]
    assert [r["time"] for r in rows] == times
    assert table.schema.metadata[b"total_points"] == b'{"test_acc": 6, "train_loss": 30}'
    assert by_param.headers["x-downsampled"] == "false" and "x-next-cursor" not in by_param.headers


def test_arrow_pages_carry_their_cursor(client: TestClient, app: FastAPI) -> None:
    url = f"/v1/jobs/{_job(client, app)}/metrics"
    first = client.get(url, params={"format": "arrow", "limit": 10})
    cursor = first.headers["x-next-cursor"]
    assert pa.ipc.open_stream(first.content).read_all().schema.metadata[b"next_cursor"] == (
        cursor.encode()
    )
    json_page = client.get(url, params={"limit": 10, "cursor": cursor}).json()
    arrow_page = client.get(url, params={"format": "arrow", "limit": 10, "cursor": cursor})
    steps = pa.ipc.open_stream(arrow_page.content).read_all().column("step").to_pylist()
    assert steps == [p["step"] for pts in json_page["metrics"].values() for p in pts]


def test_unknown_format_is_a_422_naming_it(client: TestClient, app: FastAPI) -> None:
    r = client.get(f"/v1/jobs/{_job(client, app)}/metrics", params={"format": "csv"})
    assert r.status_code == 422 and "format" in r.text


def test_the_client_frame_from_columns_equals_the_frame_from_points(
    client: TestClient, app: FastAPI
) -> None:
    job_id = _job(client, app)
    fl = Client("http://testserver", http=client, backoff=0.0)
    frame = fl.metrics(job_id)
    page = client.get(f"/v1/jobs/{job_id}/metrics").json()
    pd.testing.assert_frame_equal(frame, frames.metrics_long(page["metrics"]))
