"""The Python client against the live stack: PostgreSQL, Redis, the API and real workers.

What the client returns must be what the REST API says: a job's metric DataFrame
is its `/metrics` series point for point, a benchmark's comparison DataFrame is
`GET /v1/benchmarks/{id}` number for number, and refusals are typed errors.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flatlab.client import Client, Forbidden, NotFound, Unauthenticated, ValidationError
from tests.integration.conftest import create_key
from tests.integration.specs import TINY, spec

pytestmark = pytest.mark.integration

GRID = {
    "name": "client-grid",
    "tags": ["client"],
    "base": spec(TINY, **{"measure.sharpness": [{"name": "hessian_trace", "probes": 4}]}),
    "axes": {
        "optimizer": [
            {"name": "sgd", "label": "SGD", "base": {"name": "sgd", "lr": 0.05}},
            {"name": "sam", "label": "SAM", "rho": 0.05, "base": {"name": "sgd", "lr": 0.05}},
        ]
    },
    "seeds": [0, 1],
    "baseline": "SGD",
}


@pytest.fixture(scope="module")
def fl(api_url: str, api_key: str, workers) -> Iterator[Client]:
    with Client(api_url, api_key) as client:
        yield client


@pytest.fixture(scope="module")
def finished_job(fl: Client) -> str:
    job = fl.submit_job(spec(TINY, name="client-job", tags=["client"]))
    done = fl.wait(job.id, timeout=120, progress=False)
    assert done.status == "succeeded", done.error
    return done.id


def test_submit_wait_and_the_metric_frame_equals_the_rest_series(fl, client, finished_job):
    rest = client.get(f"/v1/jobs/{finished_job}/metrics").raise_for_status().json()["metrics"]
    long = fl.metrics(finished_job)
    assert set(long["name"]) == set(rest)
    for name, points in rest.items():
        mine = long[long["name"] == name]
        assert list(mine["step"]) == [p["step"] for p in points]
        assert list(mine["epoch"]) == [p["epoch"] for p in points]
        for value, point in zip(mine["value"], points, strict=True):
            assert (math.isnan(value) and point["value"] is None) or value == point["value"]
    wide = fl.metrics(finished_job, wide=True)
    last = rest["test_loss"][-1]
    assert wide.loc[last["step"], "test_loss"] == last["value"]
    subset = fl.metrics(finished_job, names=["test_loss"])
    assert set(subset["name"]) == {"test_loss"} and len(subset) == len(rest["test_loss"])


def test_events_replay_every_point_and_end_with_the_final_status(fl, client, finished_job):
    rest = client.get(f"/v1/jobs/{finished_job}/metrics").json()["metrics"]
    events = list(fl.events(finished_job))
    assert sum(e.event == "metric" for e in events) == sum(len(s) for s in rest.values())
    assert [e.data["status"] for e in events if e.event == "status"][-1] == "succeeded"


def test_listing_filters_and_follows_cursors(fl, finished_job):
    ids = [j.id for j in fl.jobs(tag="client", status="succeeded", page_size=1)]
    assert finished_job in ids and len(ids) == len(set(ids))


@pytest.fixture(scope="module")
def finished_benchmark(fl: Client) -> str:
    created = fl.submit_benchmark(GRID)
    report = fl.wait_benchmark(created.id, timeout=180, progress=False, poll=0.5)
    assert report.done and not report.failed_jobs
    return created.id


def test_the_comparison_frame_equals_the_benchmark_report(fl, client, finished_benchmark):
    url = f"/v1/benchmarks/{finished_benchmark}"
    rest = client.get(url).raise_for_status().json()["comparison"]
    frame = fl.comparison(finished_benchmark)
    expected = [
        (label, metric, stats)
        for label, config in rest["configurations"].items()
        for metric, stats in config["metrics"].items()
    ]
    assert len(frame) == len(expected)
    for row, (label, metric, stats) in zip(frame.itertuples(), expected, strict=True):
        assert (row.configuration, row.metric, row.n) == (label, metric, stats["n"])
        for key in ("mean", "std", "ci_low", "ci_high"):
            got, want = getattr(row, key), stats[key]
            assert (want is None and math.isnan(got)) or got == want
    wide = fl.comparison(finished_benchmark, wide=True)  # TINY regresses: losses, no accuracy
    for label, config in rest["configurations"].items():
        assert wide.loc[label, "final_test_loss"] == config["metrics"]["final_test_loss"]["mean"]
    paired = fl.paired_tests(finished_benchmark)
    sam = paired[(paired.configuration == "SAM") & (paired.metric == "final_test_loss")]
    want = rest["paired_tests"]["SAM"]["final_test_loss"]
    assert sam.iloc[0]["mean_diff"] == want["mean_diff"] and want["n_pairs"] == 2


def test_benchmarks_are_listed_page_by_page(fl, finished_benchmark):
    assert finished_benchmark in [b.id for b in fl.benchmarks(page_size=1)]


def test_results_frame_has_a_row_per_job_of_the_filter(fl, finished_job):
    rows = fl.results(filters=["tag:eq:client", "status:eq:succeeded"], fields=["optimizer.rho"])
    assert finished_job in set(rows["id"]) and "optimizer.rho" in rows.columns
    groups = fl.results(filters=["tag:eq:client"], group_by=["optimizer.name"])
    assert {"optimizer.name", "jobs", "final_test_acc_mean"} <= set(groups.columns)


def test_errors_are_typed_with_the_field(fl, api_url, stack_env):
    with pytest.raises(ValidationError) as caught:
        fl.submit_job(spec(TINY, **{"optimizer.rho": -1.0}))
    assert "optimizer.rho" in caught.value.fields
    with pytest.raises(NotFound):
        fl.job("no-such-job")
    with pytest.raises(Unauthenticated), Client(api_url, "not-a-key") as stranger:
        stranger.job("anything")
    reader = read_only_key(stack_env)
    with pytest.raises(Forbidden), Client(api_url, reader) as readonly:
        readonly.submit_job(TINY)


def read_only_key(env: dict[str, str]) -> str:
    """A read-only key, made as an operator does: the last line of `flatlab keys create`."""
    argv = ["keys", "create", "--team", "integration", "--read-only"]
    return flatlab(argv, env, check=True).stdout.strip().splitlines()[-1]


def flatlab(argv: list[str], env: dict[str, str], check: bool = False):
    return subprocess.run(
        [sys.executable, "-m", "flatlab.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def test_cancel_delete_and_keys(fl, client):
    queued = fl.submit_job(spec(TINY, **{"training.device": "cuda"}))  # no gpu worker here
    assert fl.cancel(queued.id).status == "cancelled"
    fl.delete_job(queued.id)
    with pytest.raises(NotFound):
        fl.job(queued.id)
    grid = {**GRID, "base": spec(GRID["base"], **{"training.device": "cuda"}), "name": "gone"}
    benchmark = fl.submit_benchmark(grid)
    fl.cancel_benchmark(benchmark.id)
    assert {j.status for j in fl.benchmark(benchmark.id).job_list} == {"cancelled"}
    keys = fl.keys()
    assert keys and all(not hasattr(k, "key") for k in keys)


def test_artifacts_download_whole(fl, finished_job, tmp_path: Path):
    artifacts = fl.artifacts(finished_job)
    assert "checkpoint" in {a.kind for a in artifacts}  # one per epoch
    for artifact in artifacts:
        path = fl.download_artifact(finished_job, artifact.name, tmp_path)
        assert path.stat().st_size == artifact.size_bytes


def test_plots_download_as_png_and_svg(fl, finished_job, finished_benchmark, tmp_path: Path):
    png = fl.plot_job(finished_job, "curves")
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    svg = fl.plot_job(finished_job, "curves", format="svg", path=tmp_path / "c.svg")
    assert isinstance(svg, Path) and b"<svg" in svg.read_bytes()
    chart = fl.plot_benchmark(finished_benchmark, "comparison", metric="final_test_loss")
    assert isinstance(chart, bytes) and chart.startswith(b"\x89PNG")


def test_the_cli_maps_auth_failures_to_exit_4(api_url, stack_env):
    env = {**stack_env, "FLATLAB_URL": api_url, "FLATLAB_API_KEY": "revoked-or-wrong"}
    done = flatlab(["jobs", "ls", "--json"], env)
    assert done.returncode == 4 and "API key" in done.stderr
    good = {**env, "FLATLAB_API_KEY": create_key(stack_env, "cli-team")}
    done = flatlab(["jobs", "ls", "--json"], good)
    assert done.returncode == 0 and json.loads(done.stdout) == []  # a new team has no jobs
