"""GET /v1/jobs/{id}/plots/{kind} and /v1/benchmarks/{id}/plots/{kind}: images from the
job's stored points and measure results, and clear 4xx for unknown kinds and missing data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from store.artifacts import add_artifact
from store.db import session_scope
from store.metrics import write_metric_points
from store.models import Job
from tests.unit.api.conftest import spec
from tests.unit.plots.svg import assert_drawn, svg_ids


def _set(app: FastAPI, job_id: str, **values: Any) -> None:
    with session_scope(app.state.session_factory) as session:
        job = session.get(Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)


def _points(app: FastAPI, job_id: str, points: list[tuple[str, int, float, float]]) -> None:
    with session_scope(app.state.session_factory) as session:
        write_metric_points(session=session, job_id=job_id, points=points)


def _result(app: FastAPI, job_id: str, measure: str, step: int, value: dict[str, Any]) -> None:
    """A measure's non-scalar result as the worker's recorder stores it."""
    name = f"{measure}_step{step}.json"
    folder = app.state.settings.artifacts_dir / job_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"name": measure, "step": step, "value": value}))
    with session_scope(app.state.session_factory) as session:
        team_id = session.get(Job, job_id).team_id
        add_artifact(
            session=session,
            job_id=job_id,
            team_id=team_id,
            name=name,
            kind="plot",
            path=f"{job_id}/{name}",
            step=step,
        )


@pytest.fixture
def job_id(client: TestClient, app: FastAPI) -> str:
    job = client.post("/v1/jobs", json=spec()).json()
    points = []
    for step in range(0, 100, 10):
        points += [
            ("train_loss", step, step / 10, 1.0 / (1 + step)),
            ("test_loss", step, step / 10, 1.2 / (1 + step)),
            ("train_acc", step, step / 10, step / 100),
            ("test_acc", step, step / 10, step / 110),
            ("hessian_top_eigenvalue", step, step / 10, 0.1 * step),
            ("hessian_trace", step, step / 10, 3.0 * step),
        ]
    points += [("lr", s, s / 10, 0.05) for s in range(100)]
    points += [("train_loss_step", s, s / 10, 1.0 / (1 + s)) for s in range(100)]
    _points(app, job["id"], points)
    return str(job["id"])


def test_curves_and_measures_as_png_and_svg(client: TestClient, job_id: str) -> None:
    r = client.get(f"/v1/jobs/{job_id}/plots/curves")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert_drawn(r.content, min_width=600)
    r = client.get(f"/v1/jobs/{job_id}/plots/curves", params={"format": "svg"})
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert sorted(svg_ids(r.content, "series")) == sorted(
        ["train_loss", "test_loss", "train_loss_step", "train_acc", "test_acc"]
    )
    r = client.get(f"/v1/jobs/{job_id}/plots/measures", params={"format": "svg"})
    assert sorted(svg_ids(r.content, "series")) == sorted(
        ["hessian_top_eigenvalue", "hessian_trace", "two_over_lr"]
    )


def test_landscapes_and_density_from_the_stored_measure_results(
    client: TestClient, app: FastAPI, job_id: str
) -> None:
    alphas = [-1.0, -0.5, 0.0, 0.5, 1.0]
    _result(
        app, job_id, "loss_landscape_1d", 50, {"alphas": alphas, "losses": [a * a for a in alphas]}
    )
    grid = [[a * a + b * b for b in alphas] for a in alphas]
    _result(app, job_id, "loss_landscape_2d", 90, {"alphas": alphas, "losses": grid})
    lam = [i / 10 for i in range(100)]
    _result(
        app, job_id, "hessian_density", 90, {"grid": lam, "density": [1.0 / (1 + x) for x in lam]}
    )
    for kind in ("landscape_1d", "landscape_2d", "density"):
        r = client.get(f"/v1/jobs/{job_id}/plots/{kind}")
        assert r.status_code == 200, r.text
        assert_drawn(r.content)
    svg = client.get(f"/v1/jobs/{job_id}/plots/landscape_1d", params={"format": "svg"}).text
    assert "at step 50" in svg
    r = client.get(f"/v1/jobs/{job_id}/plots/landscape_1d", params={"step": 10})
    assert (
        r.status_code == 409 and "at step 10" in r.json()["detail"] and "50" in r.json()["detail"]
    )


def test_unknown_kind_and_format_are_422_naming_them(client: TestClient, job_id: str) -> None:
    r = client.get(f"/v1/jobs/{job_id}/plots/curvs")
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "'curvs'" in r.json()["detail"] and "curves" in r.json()["detail"]
    r = client.get(f"/v1/jobs/{job_id}/plots/curves", params={"format": "gif"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "format"
    assert client.get("/v1/jobs/nope/plots/curves").status_code == 404


def test_a_job_without_the_data_says_what_is_missing(client: TestClient) -> None:
    job = client.post("/v1/jobs", json=spec()).json()
    r = client.get(f"/v1/jobs/{job['id']}/plots/curves")
    assert r.status_code == 409 and "no loss or accuracy points yet" in r.json()["detail"]
    r = client.get(f"/v1/jobs/{job['id']}/plots/measures")
    assert r.status_code == 409 and "measure.sharpness" in r.json()["detail"]
    r = client.get(f"/v1/jobs/{job['id']}/plots/density")
    assert r.status_code == 409 and "hessian_density" in r.json()["detail"]


BENCH = {
    "name": "plots",
    "base": spec(),
    "axes": {"optimizer": [{"name": "sgd", "label": "SGD"}, {"name": "sam", "label": "SAM"}]},
    "seeds": [0, 1, 2],
}


@pytest.fixture
def bench(client: TestClient, app: FastAPI) -> dict[str, Any]:
    made = client.post("/v1/benchmarks", json=BENCH).json()
    report = client.get(f"/v1/benchmarks/{made['id']}").json()
    for i, row in enumerate(report["job_list"]):
        sam = row["label"] == "SAM"
        summary = {
            "final_test_acc": 0.9 + 0.02 * sam + 0.001 * row["seed"],
            "hessian_trace": 10.0 - 5 * sam + i,
            "gen_gap_acc": 0.05 - 0.02 * sam + 0.001 * i,
            "gen_gap_loss": 0.1,
        }
        _set(app, row["job_id"], status="succeeded", summary=summary)
    return dict(made)


def test_benchmark_comparison_has_a_bar_per_configuration(
    client: TestClient, bench: dict[str, Any]
) -> None:
    url = f"/v1/benchmarks/{bench['id']}/plots/comparison"
    r = client.get(url, params={"format": "svg", "metric": "final_test_acc"})
    assert r.status_code == 200, r.text
    assert svg_ids(r.content, "bar") == ["SGD", "SAM"]
    assert_drawn(client.get(url).content)
    r = client.get(url, params={"metric": "final_tset_acc"})
    assert r.status_code == 422 and "'final_tset_acc'" in r.json()["detail"]
    assert "did you mean final_test_acc" in r.json()["detail"]


def test_benchmark_sharpness_gap_scatter(client: TestClient, bench: dict[str, Any]) -> None:
    url = f"/v1/benchmarks/{bench['id']}/plots/sharpness_gap"
    r = client.get(url, params={"format": "svg"})
    assert r.status_code == 200, r.text
    assert svg_ids(r.content, "series") == ["SGD", "SAM"]
    assert "n = 6" in r.text
    r = client.get(url, params={"metric": "hessian_trac"})
    assert r.status_code == 422 and "hessian_trace" in r.json()["detail"]
    r = client.get(f"/v1/benchmarks/{bench['id']}/plots/bars")
    assert r.status_code == 422 and "comparison, sharpness_gap" in r.json()["detail"]


def test_a_benchmark_without_succeeded_runs_says_so(client: TestClient) -> None:
    made = client.post("/v1/benchmarks", json=BENCH).json()
    r = client.get(f"/v1/benchmarks/{made['id']}/plots/comparison")
    assert r.status_code == 409 and "no succeeded run yet" in r.json()["detail"]


def test_plots_need_the_key_when_auth_is_on(auth_client: TestClient) -> None:
    assert auth_client.get("/v1/jobs/x/plots/curves").status_code == 401
    assert auth_client.get("/v1/benchmarks/x/plots/comparison").status_code == 401
