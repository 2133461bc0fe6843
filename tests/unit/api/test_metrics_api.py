"""GET /v1/jobs/{id}/metrics: complete in pages, downsampled with its extremes, names checked."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.services.metrics import downsample
from store.db import session_scope
from store.metrics import write_metric_points
from tests.unit.api.conftest import spec

SERIES = ("grad_evals", "lr", "rho", "train_acc_step", "train_loss_step")  # a SAM run's 5


def _job_with_points(client: TestClient, app: FastAPI, points: list[Any]) -> str:
    job_id: str = client.post("/v1/jobs", json=spec()).json()["id"]
    with session_scope(app.state.session_factory) as session:
        write_metric_points(session=session, job_id=job_id, points=points)
    return job_id


def _all_pages(client: TestClient, url: str, **params: Any) -> tuple[dict[str, list[Any]], int]:
    """Follow `next_cursor` to the end; the points by series and how many pages it took."""
    out: dict[str, list[Any]] = {}
    pages, cursor = 0, None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get(url, params=query).json()
        pages += 1
        for name, points in body["metrics"].items():
            out.setdefault(name, []).extend(points)
        cursor = body["next_cursor"]
        if cursor is None:
            return out, pages


def test_a_sam_run_of_25000_steps_and_5_series_comes_back_whole(
    client: TestClient, app: FastAPI
) -> None:
    steps = 25_000
    points = [(n, s, s / 100, float(s % 97)) for n in SERIES for s in range(steps)]
    job_id = _job_with_points(client, app, points)
    url = f"/v1/jobs/{job_id}/metrics"

    first = client.get(url).json()  # the default page stops at 100,000 points and says so
    assert sum(len(p) for p in first["metrics"].values()) == 100_000
    assert first["next_cursor"] is not None
    assert first["total_points"] == dict.fromkeys(SERIES, steps)

    got, pages = _all_pages(client, url)
    assert pages == 2
    assert {name: [p["step"] for p in pts] for name, pts in got.items()} == {
        name: list(range(steps)) for name in SERIES
    }


def test_small_pages_walk_every_point_once_in_order(client: TestClient, app: FastAPI) -> None:
    points = [(n, s, s / 10, float(s)) for n in ("a_loss", "b_loss") for s in range(0, 50, 5)]
    job_id = _job_with_points(client, app, points)
    got, pages = _all_pages(client, f"/v1/jobs/{job_id}/metrics", limit=3, since_step=10)
    assert pages == 6  # 16 points at steps >= 10, 3 a page
    assert {n: [p["step"] for p in pts] for n, pts in got.items()} == {
        "a_loss": list(range(10, 50, 5)),
        "b_loss": list(range(10, 50, 5)),
    }


def test_max_points_keeps_every_series_its_ends_and_its_spikes(
    client: TestClient, app: FastAPI
) -> None:
    steps, budget = 5_000, 200
    rng = random.Random(0)
    values = {n: [rng.gauss(0.0, 1.0) for _ in range(steps)] for n in SERIES}
    values["lr"][2_345] = 1e6  # one spike up and one down, as a diverging step would
    values["lr"][4_001] = -1e6
    points = [(n, s, s / 100, values[n][s]) for n in SERIES for s in range(steps)]
    points.append(("test_acc", 4_999, 49.99, 0.9))  # one point: returned as is
    job_id = _job_with_points(client, app, points)

    body = client.get(f"/v1/jobs/{job_id}/metrics", params={"max_points": budget}).json()
    assert body["downsampled"] is True and body["next_cursor"] is None
    assert sorted(body["metrics"]) == sorted([*SERIES, "test_acc"])  # no series starved
    for name in SERIES:
        kept = body["metrics"][name]
        got = [p["step"] for p in kept]
        assert 4 <= len(kept) <= budget and got == sorted(set(got))
        assert got[0] == 0 and got[-1] == steps - 1
        assert all(p["value"] == values[name][p["step"]] for p in kept)  # original points
        assert max(p["value"] for p in kept) == max(values[name])
        assert min(p["value"] for p in kept) == min(values[name])
    assert {2_345, 4_001} <= {p["step"] for p in body["metrics"]["lr"]}
    assert [p["step"] for p in body["metrics"]["test_acc"]] == [4_999]
    paged = client.get(f"/v1/jobs/{job_id}/metrics", params={"max_points": 10, "cursor": "x"})
    assert (paged.status_code, paged.json()["errors"][0]["loc"]) == (422, "cursor")


def _row(step: int, value: float | None) -> Any:
    return ("x", step, step / 10, value, datetime(2026, 1, 1, tzinfo=UTC))


def test_downsample_keeps_each_buckets_min_and_max_by_brute_force() -> None:
    rng = random.Random(1)
    for trial in range(200):
        n = rng.randint(1, 400)
        steps = sorted(rng.sample(range(10 * n), n))
        series = [_row(s, rng.choice([None, rng.uniform(-1, 1)])) for s in steps]
        budget = rng.randint(4, 60)
        kept = downsample(series, budget)
        assert len(kept) <= budget and set(kept) <= set(series), trial
        if n <= budget:
            assert kept == series
            continue
        assert kept[0] == series[0] and kept[-1] == series[-1]
        # The documented buckets: the inner steps cut into (budget - 2) // 2 equal widths.
        inner = series[1:-1]
        buckets = (budget - 2) // 2
        low, width = inner[0][1], Fraction(inner[-1][1] - inner[0][1] + 1, buckets)
        for b in range(buckets):
            members = [r for r in inner if low + b * width <= r[1] < low + (b + 1) * width]
            if not members:
                continue
            here = [r for r in kept[1:-1] if r in members]
            valued = [r[3] for r in members if r[3] is not None]
            if valued:
                assert max(r[3] for r in here if r[3] is not None) == max(valued), trial
                assert min(r[3] for r in here if r[3] is not None) == min(valued), trial
            else:
                assert here == members[:1], trial  # an all-NaN stretch stays visible


def test_unknown_series_name_is_422_with_the_closest_names(
    client: TestClient, app: FastAPI
) -> None:
    job_id = _job_with_points(client, app, [("my_probe", 1, 0.1, 1.0)])
    r = client.get(f"/v1/jobs/{job_id}/metrics", params={"names": "test_accuracy"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    (error,) = r.json()["errors"]
    assert error["loc"] == "names" and "test_acc" in error["suggestions"]
    assert "test_accuracy" in r.json()["detail"]
    # names a run records by design (none stored yet) and names this job has are fine
    ok = client.get(f"/v1/jobs/{job_id}/metrics", params={"names": "test_acc,my_probe"})
    assert ok.status_code == 200 and list(ok.json()["metrics"]) == ["my_probe"]
    sharp = client.get(f"/v1/jobs/{job_id}/metrics", params={"names": "hessian_trace_std"})
    assert sharp.status_code == 200


def test_integers_past_the_columns_range_are_422_and_at_it_empty(
    client: TestClient, app: FastAPI
) -> None:
    job_id = _job_with_points(client, app, [("train_loss_step", 1, 0.1, 1.0)])
    url = f"/v1/jobs/{job_id}/metrics"
    for params in ({"since_step": 2**63}, {"since_step": -1}, {"max_points": 3}, {"limit": 0}):
        r = client.get(url, params=params)
        assert r.status_code == 422, params
        assert r.json()["errors"][0]["loc"] == next(iter(params))
    edge = client.get(url, params={"since_step": 2**63 - 1})
    assert edge.status_code == 200 and edge.json()["metrics"] == {}
    bad = client.get(url, params={"cursor": "not-a-cursor"})
    assert (bad.status_code, bad.json()["errors"][0]["loc"]) == (400, "cursor")
    events = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": str(2**63)})
    assert events.status_code == 422


def test_nan_points_stay_null_after_downsampling(client: TestClient, app: FastAPI) -> None:
    points = [("train_loss_step", s, s / 10, math.nan if s > 50 else 1.0) for s in range(100)]
    job_id = _job_with_points(client, app, points)
    body = client.get(f"/v1/jobs/{job_id}/metrics", params={"max_points": 10}).json()
    kept = body["metrics"]["train_loss_step"]
    assert len(kept) <= 10 and kept[-1]["value"] is None
    assert any(p["value"] is None for p in kept[:-1])  # the diverged stretch, not only its end
