"""POST/GET /v1/benchmarks end to end: real API, PostgreSQL, Redis and Celery workers."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import select

from store.models import Job
from tests.integration.specs import TINY, spec
from tests.tolerance import float_tolerance

pytestmark = pytest.mark.integration

BASE = spec(TINY, **{"measure.sharpness": [{"name": "hessian_trace", "probes": 4}]})
OPTIMIZERS = [
    {"name": "sgd", "label": "SGD", "base": {"name": "sgd", "lr": 0.05}},
    {"name": "sam", "label": "SAM", "rho": 0.05, "base": {"name": "sgd", "lr": 0.05}},
]
GRID = {
    "name": "it-grid",
    "base": BASE,
    "axes": {"optimizer": OPTIMIZERS, "optimizer.base.lr": [0.05, 0.02]},
    "seeds": [0, 1, 2],
    "baseline": "SGD·lr=0.05",
}


def wait_for_benchmark(client, benchmark_id: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        params = {"metric": "final_test_loss", "order": "asc"}
        report = client.get(f"/v1/benchmarks/{benchmark_id}", params=params)
        report = report.raise_for_status().json()
        if report["progress"]["fraction_done"] == 1.0:
            return report
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark never finished: {report['progress']}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def grid(client) -> dict:
    response = client.post("/v1/benchmarks", json=GRID)
    assert response.status_code == 202, response.text
    return wait_for_benchmark(client, response.json()["id"])


def summaries(session_factory, report: dict) -> dict[str, list[tuple[int, dict]]]:
    """label → [(seed, summary)] read straight from the jobs table."""
    ids = {j["job_id"]: (j["label"], j["seed"]) for j in report["job_list"]}
    with session_factory() as session:
        jobs = session.scalars(select(Job).where(Job.id.in_(list(ids)))).all()
    out: dict[str, list[tuple[int, dict]]] = {}
    for job in jobs:
        label, seed = ids[job.id]
        out.setdefault(label, []).append((seed, job.summary))
    return {label: sorted(runs, key=lambda r: r[0]) for label, runs in out.items()}


def test_a_2x2x3_grid_runs_12_jobs_with_one_label_per_configuration(grid):
    assert grid["jobs"] == 12
    assert grid["progress"]["by_status"]["succeeded"] == 12
    labels = {j["label"] for j in grid["job_list"]}
    assert labels == {"SGD·lr=0.05", "SGD·lr=0.02", "SAM·lr=0.05", "SAM·lr=0.02"}


def test_statistics_equal_those_recomputed_from_stored_summaries(grid, session_factory):
    stored = summaries(session_factory, grid)
    configurations = grid["comparison"]["configurations"]
    for label, runs in stored.items():
        for metric in ("final_test_loss", "gen_gap_loss", "hessian_trace"):
            values = np.array([s[metric] for _, s in runs])
            got = configurations[label]["metrics"][metric]
            half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3)
            # float64 sums of 3 values; the std subtracts the mean (condition |mean|/std).
            condition = max(1.0, float(np.abs(values).max() / max(values.std(ddof=1), 1e-300)))
            tol = float_tolerance(ops=3, condition=condition)
            assert got["n"] == 3 and got["small_n"] is True
            assert got["mean"] == pytest.approx(values.mean(), rel=float_tolerance(ops=3))
            assert got["std"] == pytest.approx(values.std(ddof=1), rel=tol)
            assert got["ci_low"] == pytest.approx(values.mean() - half, rel=tol)
        # Seeds trained as one ensemble share its clock: only runs with their own count.
        own_clock = [s for _, s in runs if s.get("ensemble_size", 1.0) <= 1.0]
        assert configurations[label]["metrics"]["train_seconds"]["n"] == len(own_clock)
        assert configurations[label]["shared_clock"] == len(runs) - len(own_clock)


def test_ranking_and_paired_test_against_the_baseline(grid, session_factory):
    stored = summaries(session_factory, grid)
    comparison = grid["comparison"]
    means = {k: np.mean([s["final_test_loss"] for _, s in v]) for k, v in stored.items()}
    assert [r["label"] for r in comparison["ranking"]] == sorted(means, key=means.get)

    base = [s["final_test_loss"] for _, s in stored["SGD·lr=0.05"]]
    sam = [s["final_test_loss"] for _, s in stored["SAM·lr=0.05"]]
    expected = stats.ttest_rel(sam, base)
    got = comparison["paired_tests"]["SAM·lr=0.05"]["final_test_loss"]
    assert got["n_pairs"] == 3
    # The same t from the same float64 values: the p-value agrees to a few roundings.
    assert got["p_value"] == pytest.approx(expected.pvalue, rel=float_tolerance(ops=100))
    assert "SGD·lr=0.05" not in comparison["paired_tests"]


def test_kendall_tau_of_sharpness_and_gap_over_all_runs(grid, session_factory):
    runs = [s for runs in summaries(session_factory, grid).values() for _, s in runs]
    (entry,) = [
        e
        for e in grid["comparison"]["flatness_vs_generalization"]
        if e["measure"] == "hessian_trace" and e["gap"] == "gen_gap_loss"
    ]
    expected = stats.kendalltau(
        [s["hessian_trace"] for s in runs], [s["gen_gap_loss"] for s in runs]
    )
    assert entry["n"] == 12
    assert entry["tau"] == pytest.approx(expected.statistic, rel=float_tolerance(ops=12 * 12))


def test_equal_gradient_budget_is_the_smallest_total(grid, session_factory):
    runs = [s for runs in summaries(session_factory, grid).values() for _, s in runs]
    view = grid["comparison"]["equal_grad_evals"]
    assert view["budget"] == min(s["grad_evals"] for s in runs)
    sam_at_budget = view["metrics"]["test_loss"]["SAM·lr=0.05"]
    assert sam_at_budget["n"] == 3  # SAM spends 2 gradients a step: read at half its run


def test_reuse_links_succeeded_jobs_and_runs_only_the_new_points(client, grid):
    again = {**GRID, "axes": {"optimizer": OPTIMIZERS[:1], "optimizer.base.lr": [0.05]}}
    again.update(seeds=[0, 1, 7], reuse=True, baseline=None)
    response = client.post("/v1/benchmarks", json=again)
    assert response.status_code == 202, response.text
    created = response.json()
    assert (created["jobs"], created["created"], created["reused"]) == (3, 1, 2)

    report = client.get(f"/v1/benchmarks/{created['id']}").json()
    first = {(j["label"], j["seed"]): j["job_id"] for j in grid["job_list"]}
    for job in report["job_list"]:
        if job["seed"] in (0, 1):
            assert job["reused"] and job["job_id"] == first[("SGD·lr=0.05", job["seed"])]
    linked = client.get("/v1/results", params={"filter": f"benchmark:eq:{created['id']}"})
    assert len(linked.json()["items"]) == 3


def test_an_invalid_grid_creates_no_job(client):
    before = len(client.get("/v1/results", params={"limit": 50_000}).json()["items"])
    # SGD has no ρ, so the axis is skipped for it; a negative ρ is wrong for SAM.
    bad = {**GRID, "axes": {**GRID["axes"], "optimizer.rho": [-0.1]}}
    response = client.post("/v1/benchmarks", json=bad)
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["loc"] == "optimizer.rho"
    assert problem["errors"][0]["point"]["label"].startswith("SAM")
    assert len(client.get("/v1/results", params={"limit": 50_000}).json()["items"]) == before


def test_too_large_a_grid_names_its_size(client):
    big = {**GRID, "axes": {"optimizer.base.lr": [0.001 * i for i in range(1, 401)]}}
    response = client.post("/v1/benchmarks", json=big)
    assert response.status_code == 422
    assert "1200 jobs" in response.json()["detail"]
