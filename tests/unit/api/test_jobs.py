"""POST/GET /v1/jobs and a job's sub-resources, on SQLite with the filesystem broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from store.artifacts import add_artifact
from store.db import session_scope
from store.metrics import write_metric_points
from store.models import Job
from tests.unit.api.conftest import make_settings, spec


def _set(app: FastAPI, job_id: str, **values: Any) -> None:
    with session_scope(app.state.session_factory) as session:
        job = session.get(Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)


def test_submit_answers_202_with_a_queued_job_and_enqueues_its_id(
    client: TestClient, tmp_path: Path
) -> None:
    r = client.post("/v1/jobs", json=spec(tags=["digits"]))
    job = r.json()
    assert r.status_code == 202 and job["status"] == "queued"
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert len(job["spec_hash"]) == 64 and job["optimizer"] == "sam" and job["queue"] == "cpu"
    messages = list((tmp_path / "broker" / "queue").glob("*.msg"))
    assert len(messages) == 1 and job["id"] in messages[0].read_text()
    assert client.get(f"/v1/jobs/{job['id']}").json()["timings"]["enqueued_at"] is not None


def test_submit_with_the_broker_down_keeps_the_job_queued(tmp_path: Path) -> None:
    from api.app import create_app

    app = create_app(make_settings(tmp_path, broker_url="redis://127.0.0.1:1/0"))
    app.state.celery.conf.broker_transport_options = {"max_retries": 0}
    with TestClient(app) as client:
        r = client.post("/v1/jobs", json=spec())
        assert r.status_code == 202
        job = client.get(f"/v1/jobs/{r.json()['id']}").json()
    assert job["status"] == "queued" and job["timings"]["enqueued_at"] is None


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"optimizer": {"name": "sam", "rho": -0.1}}, "optimizer.rho"),
        ({"optimizer": {"name": "no_such_rule"}}, "optimizer"),
        ({"training": {"epochs": "many"}}, "training.epochs"),
        ({"optimizer": {"name": "sam", "rhoo": 0.1}}, "optimizer.rhoo"),
        ({"optimizer": {"name": "sgd", "base": {"lr": 0}}}, "optimizer.base.lr"),
        ({"model": {"name": "mlp", "hidden": ["wide"]}}, "model.hidden.0"),
    ],
)
def test_invalid_spec_is_a_problem_naming_the_field(
    client: TestClient, change: dict[str, Any], loc: str
) -> None:
    r = client.post("/v1/jobs", json=spec(**change))
    body = r.json()
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    assert loc in [e["loc"] for e in body["errors"]]


def test_body_that_is_not_json_is_a_validation_problem(client: TestClient) -> None:
    r = client.post("/v1/jobs", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["status"] == 422


def test_get_job_shows_progress_timings_and_spec(client: TestClient, app: FastAPI) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    _set(app, job_id, status="running", step=50, epoch=1.5, fraction=0.25, total_steps=200)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["progress"] == {"step": 50, "epoch": 1.5, "fraction": 0.25, "total_steps": 200}
    assert job["timings"]["created_at"].endswith(("+00:00", "Z"))
    assert job["spec"]["optimizer"]["rho"] == 0.05 and job["attempts"] == 0


def test_progress_fraction_is_step_over_total_steps(client: TestClient, app: FastAPI) -> None:
    # A checkpoint at the end of epoch 2 of 11 wrote step 44; the last progress write said 0.09.
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    _set(app, job_id, status="running", step=44, epoch=2.0, fraction=0.09, total_steps=242)
    progress = client.get(f"/v1/jobs/{job_id}").json()["progress"]
    assert progress["fraction"] == 44 / 242


def test_unknown_job_is_404_problem(client: TestClient) -> None:
    for path in ("", "/metrics", "/events", "/artifacts", "/cancel"):
        method = client.post if path == "/cancel" else client.get
        r = method(f"/v1/jobs/nope{path}")
        assert r.status_code == 404 and r.json()["detail"] == "no job 'nope'"


def test_same_idempotency_key_and_body_return_the_same_job(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k-1"}
    first = client.post("/v1/jobs", json=spec(), headers=headers)
    again = client.post("/v1/jobs", json=spec(), headers=headers)
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(client.get("/v1/jobs").json()["items"]) == 1


def test_same_idempotency_key_with_another_body_is_422(client: TestClient) -> None:
    client.post("/v1/jobs", json=spec(), headers={"Idempotency-Key": "k-1"})
    r = client.post("/v1/jobs", json=spec(name="other"), headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 422 and r.json()["code"] == "idempotency_key_reused"


def test_pagination_walks_every_job_once(client: TestClient) -> None:
    created = {client.post("/v1/jobs", json=spec()).json()["id"] for _ in range(12)}
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 5}
    while True:
        page = client.get("/v1/jobs", params=params).json()
        seen += [j["id"] for j in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert sorted(seen) == sorted(created)


def test_filters_select_jobs(client: TestClient) -> None:
    sam = client.post("/v1/jobs", json=spec(tags=["a"])).json()
    client.post("/v1/jobs", json=spec(optimizer={"name": "sgd"}, tags=["b"]))

    def ids(**params: str) -> list[str]:
        return [j["id"] for j in client.get("/v1/jobs", params=params).json()["items"]]

    assert ids(optimizer="sam") == [sam["id"]] == ids(tag="a") == ids(spec_hash=sam["spec_hash"])
    assert ids(status="running") == [] and len(ids(model="mlp", dataset="digits")) == 2


def test_bad_filter_and_cursor_are_problems(client: TestClient) -> None:
    r = client.get("/v1/jobs", params={"status": "done"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "status"
    assert client.get("/v1/jobs", params={"cursor": "%%"}).status_code == 400
    assert client.get("/v1/jobs", params={"limit": 0}).json()["errors"][0]["loc"] == "limit"


def test_cancel_of_a_queued_job_is_immediate_and_final(client: TestClient) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    r = client.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = client.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["status"] == 409


def test_cancel_of_a_running_job_is_requested(client: TestClient, app: FastAPI) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    _set(app, job_id, status="running")
    r = client.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "running"
    assert r.json()["timings"]["cancel_requested_at"] is not None


def _write_points(app: FastAPI, job_id: str, points: list[tuple[str, int, float, float]]) -> None:
    with session_scope(app.state.session_factory) as session:
        write_metric_points(session=session, job_id=job_id, points=points)


def test_metrics_are_grouped_by_name_and_filtered(client: TestClient, app: FastAPI) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    points = [(n, s, s / 10, float(s)) for s in range(5) for n in ("train_loss", "test_acc", "x")]
    _write_points(app, job_id, [*points, ("train_loss", 9, 0.9, float("nan"))])
    r = client.get(f"/v1/jobs/{job_id}/metrics", params={"names": "train_loss,test_acc"})
    metrics = r.json()["metrics"]
    assert sorted(metrics) == ["test_acc", "train_loss"]
    assert [p["step"] for p in metrics["train_loss"]] == [0, 1, 2, 3, 4, 9]
    assert metrics["train_loss"][-1]["value"] is None
    late = client.get(f"/v1/jobs/{job_id}/metrics", params={"since_step": 4}).json()["metrics"]
    assert {name: [p["step"] for p in pts] for name, pts in late.items()} == {
        "test_acc": [4], "train_loss": [4, 9], "x": [4]
    }  # fmt: skip


def _events(client: TestClient, job_id: str, **headers: str) -> list[tuple[str, str, Any]]:
    events, kind, event_id = [], "", ""
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                event_id = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, event_id, json.loads(line.split(":", 1)[1])))
    return events


def test_events_stream_status_and_points_then_end(client: TestClient, app: FastAPI) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    _write_points(app, job_id, [("train_loss", 1, 0.1, 2.0), ("train_loss", 2, 0.2, 1.0)])
    _set(app, job_id, status="succeeded")
    events = _events(client, job_id)
    assert [(k, d.get("status") or d["step"]) for k, _, d in events] == [
        ("status", "succeeded"), ("metric", 1), ("metric", 2)
    ]  # fmt: skip
    resumed = _events(client, job_id, **{"Last-Event-ID": events[1][1]})
    assert [(k, d.get("step")) for k, _, d in resumed] == [("status", None), ("metric", 2)]


def test_artifacts_are_listed_and_downloaded(client: TestClient, app: FastAPI) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    root = app.state.settings.artifacts_dir
    (root / job_id).mkdir(parents=True)
    (root / job_id / "final.pt").write_bytes(b"weights")
    (root.parent / "secret").write_text("no")
    with session_scope(app.state.session_factory) as session:
        team_id = session.get(Job, job_id).team_id  # type: ignore[union-attr]
        common = {"session": session, "job_id": job_id, "team_id": team_id, "kind": "weights"}
        add_artifact(name="final.pt", path=f"{job_id}/final.pt", size_bytes=7, **common)
        add_artifact(name="escape", path="../secret", **common)
    listed = client.get(f"/v1/jobs/{job_id}/artifacts").json()["items"]
    assert [a["name"] for a in listed] == ["final.pt", "escape"]
    assert client.get(f"/v1/jobs/{job_id}/artifacts/final.pt").content == b"weights"
    assert client.get(f"/v1/jobs/{job_id}/artifacts/escape").status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/artifacts/none").status_code == 404
