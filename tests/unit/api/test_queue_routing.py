"""Submission knows the live queues: routing, waiting reasons, /readyz; missing data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from store.db import session_scope
from store.workers import register_worker
from tests.unit.api.conftest import make_settings, spec


def _worker(
    app: FastAPI, worker_id: str, queues: list[str], devices: list[str] | None = None
) -> None:
    with session_scope(app.state.session_factory) as session:
        register_worker(
            session=session,
            worker_id=worker_id,
            hostname="h",
            pid=1,
            queues=queues,
            devices=devices or [],
        )


def test_a_job_nobody_consumes_says_why_it_waits_at_submission_and_when_read(
    app: FastAPI, client: TestClient
) -> None:
    r = client.post("/v1/jobs", json=spec())
    job = r.json()
    assert r.status_code == 202 and job["queue"] == "cpu"
    assert "no live worker consumes queue 'cpu'" in job["waiting_reason"]
    _worker(app, "cpu@h", ["cpu"])
    assert client.get(f"/v1/jobs/{job['id']}").json()["waiting_reason"] is None
    listed = client.get("/v1/jobs").json()["items"]
    assert [j["waiting_reason"] for j in listed] == [None]


def test_cuda_on_a_cpu_only_stack_is_accepted_with_a_reason_naming_gpu(
    app: FastAPI, client: TestClient
) -> None:
    _worker(app, "cpu@h", ["cpu"])
    job = client.post("/v1/jobs", json=spec(training={"device": "cuda"})).json()
    assert job["status"] == "queued" and job["queue"] == "gpu"
    assert "queue 'gpu'" in job["waiting_reason"] and "--gpu" in job["waiting_reason"]
    assert "queue 'gpu'" in client.get(f"/v1/jobs/{job['id']}").json()["waiting_reason"]


def test_a_default_job_goes_to_the_gpu_queue_of_a_gpu_only_deployment(
    app: FastAPI, client: TestClient
) -> None:
    _worker(app, "gpu0@h", ["gpu"])  # the README's team deployment: `flatlab worker --gpu 0`
    job = client.post("/v1/jobs", json=spec()).json()
    assert job["queue"] == "gpu" and job["waiting_reason"] is None
    pinned = client.post("/v1/jobs", json=spec(training={"device": "cpu"})).json()
    assert pinned["queue"] == "cpu" and "queue 'cpu'" in pinned["waiting_reason"]


def test_auto_queue_setting_pins_auto_jobs(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, auto_queue="cpu"))
    with TestClient(app) as client:
        _worker(app, "gpu0@h", ["gpu"])
        job = client.post("/v1/jobs", json=spec()).json()
    assert job["queue"] == "cpu" and "queue 'cpu'" in job["waiting_reason"]


def test_benchmark_jobs_are_routed_like_single_jobs(app: FastAPI, client: TestClient) -> None:
    _worker(app, "gpu0@h", ["gpu"])
    body = {"base": spec(), "axes": {"optimizer.rho": [0.01, 0.05]}}
    r = client.post("/v1/benchmarks", json=body)
    assert r.status_code == 202, r.text
    jobs = client.get("/v1/jobs").json()["items"]
    assert len(jobs) >= 2 and {j["queue"] for j in jobs} == {"gpu"}


def test_readyz_lists_each_queue_with_its_live_workers_and_queued_jobs(
    app: FastAPI, client: TestClient
) -> None:
    client.post("/v1/jobs", json=spec(training={"device": "cuda"}))
    _worker(app, "cpu@h", ["cpu"])
    queues = client.get("/readyz").json()["queues"]
    assert queues["cpu"] == {"workers": ["cpu@h"], "queued_jobs": 0, "waiting_reason": None}
    assert queues["gpu"]["workers"] == [] and queues["gpu"]["queued_jobs"] == 1
    assert "queue 'gpu'" in queues["gpu"]["waiting_reason"]


@pytest.mark.parametrize(
    ("data", "loc", "words"),
    [
        ({"name": "npz", "path": "missing.npz"}, "data.path", "not found in the data folder"),
        ({"name": "cifar10"}, "data.name", "cifar-10-batches-py"),
        ({"name": "cifar100"}, "data.name", "cifar-100-python"),
    ],
)
def test_missing_data_files_are_refused_at_submission(
    client: TestClient, data: dict[str, str], loc: str, words: str
) -> None:
    model = {"name": "mlp", "hidden": [8]}
    r = client.post("/v1/jobs", json=spec(model=model, data=data))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["errors"][0]["loc"] == loc and words in problem["detail"]
    assert client.get("/v1/jobs").json()["items"] == []
    bench = client.post("/v1/benchmarks", json={"base": spec(model=model, data=data)})
    assert bench.status_code == 422 and bench.json()["errors"][0]["loc"] == loc


def test_a_cifar_folder_without_its_batch_files_is_refused(
    tmp_path: Path, client: TestClient
) -> None:
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    r = client.post("/v1/jobs", json=spec(data={"name": "cifar10"}))
    assert r.status_code == 422 and "data_batch_1" in r.json()["detail"]


def test_an_npz_file_in_the_data_folder_is_accepted(tmp_path: Path, client: TestClient) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    x, y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])
    np.savez(folder / "mine.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    assert (
        client.post("/v1/jobs", json=spec(data={"name": "npz", "path": "mine"})).status_code == 202
    )


def test_the_data_check_can_be_turned_off_where_the_api_cannot_see_the_data(
    tmp_path: Path,
) -> None:
    with TestClient(create_app(make_settings(tmp_path, check_data_on_submit=False))) as client:
        r = client.post("/v1/jobs", json=spec(data={"name": "npz", "path": "elsewhere"}))
    assert r.status_code == 202


def test_a_job_wider_than_every_live_gpu_worker_waits_saying_so(
    app: FastAPI, client: TestClient
) -> None:
    _worker(app, "gpu0@h", ["gpu"], ["0"])
    body = spec(
        training={"device": "cuda"},
        resources={"devices": 4},
        data={"name": "digits", "batch_size": 64},
    )
    job = client.post("/v1/jobs", json=body).json()
    assert job["status"] == "queued" and job["queue"] == "gpu"
    reason = job["waiting_reason"]
    assert "resources.devices 4" in reason and "holds 1" in reason and "--gpus 0,1,2,3" in reason
    _worker(app, "gpus@h", ["gpu"], ["0", "1", "2", "3"])
    assert client.get(f"/v1/jobs/{job['id']}").json()["waiting_reason"] is None
