"""GET /v1/benchmarks, POST /v1/benchmarks/{id}/cancel, DELETE /v1/jobs/{id}, GET /v1/keys,
paginated uploads and the media type of artifact downloads."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from store.artifacts import add_artifact
from store.db import session_scope
from store.keys import revoke_api_key
from store.metrics import write_metric_points
from store.models import ApiKey, Job, MetricPoint
from tests.unit.api.conftest import new_key, spec


def _set(app: FastAPI, job_id: str, **values: Any) -> None:
    with session_scope(app.state.session_factory) as session:
        job = session.get(Job, job_id)
        for key, value in values.items():
            setattr(job, key, value)


def _benchmark(client: TestClient, name: str, tags: list[str] | None = None) -> dict[str, Any]:
    body = {"name": name, "tags": tags or [], "base": spec(), "seeds": [0, 1]}
    body["axes"] = {"optimizer.rho": [0.05, 0.1]}
    r = client.post("/v1/benchmarks", json=body)
    assert r.status_code == 202, r.text
    return dict(r.json())


def _walk(client: TestClient, url: str, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        body = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})}).json()
        items += body["items"]
        if (cursor := body["next_cursor"]) is None:
            return items


def test_benchmarks_are_listed_newest_first_in_pages_with_filters(client: TestClient) -> None:
    made = [_benchmark(client, f"grid-{i}", ["rho"] if i % 2 else []) for i in range(5)]
    listed = _walk(client, "/v1/benchmarks", limit=2)
    assert [b["id"] for b in listed] == [b["id"] for b in reversed(made)]
    assert listed[0]["jobs"] == 4 and listed[0]["by_status"]["queued"] == 4
    tagged = _walk(client, "/v1/benchmarks", tag="rho")
    assert [b["name"] for b in tagged] == ["grid-3", "grid-1"]
    assert [b["id"] for b in _walk(client, "/v1/benchmarks", name="grid-2")] == [made[2]["id"]]


def test_cancelling_a_benchmark_cancels_its_unfinished_jobs_and_says_how_many(
    client: TestClient, app: FastAPI
) -> None:
    bench = _benchmark(client, "to-stop")
    jobs = [j["job_id"] for j in client.get(f"/v1/benchmarks/{bench['id']}").json()["job_list"]]
    _set(app, jobs[0], status="succeeded")
    _set(app, jobs[1], status="running")
    r = client.post(f"/v1/benchmarks/{bench['id']}/cancel")
    assert r.status_code == 202  # one was running: it stops at its next step
    assert r.json() == {"benchmark_id": bench["id"], "cancelled": 2, "stopping": 1, "unfinished": 3}
    statuses = [client.get(f"/v1/jobs/{j}").json() for j in jobs]
    assert [s["status"] for s in statuses] == ["succeeded", "running", "cancelled", "cancelled"]
    assert statuses[1]["timings"]["cancel_requested_at"] is not None
    again = client.post(f"/v1/benchmarks/{bench['id']}/cancel")
    assert again.status_code == 200
    assert again.json() | {"benchmark_id": ""} == {
        "benchmark_id": "", "cancelled": 0, "stopping": 0, "unfinished": 1
    }  # fmt: skip
    assert client.post("/v1/benchmarks/nope/cancel").status_code == 404


def test_deleting_a_finished_job_removes_its_points_artifacts_and_files(
    client: TestClient, app: FastAPI
) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    keep = client.post("/v1/jobs", json=spec()).json()["id"]
    root = app.state.settings.artifacts_dir
    (root / job_id).mkdir(parents=True)
    (root / job_id / "checkpoint.pt").write_bytes(b"state")
    with session_scope(app.state.session_factory) as session:
        team_id = session.get(Job, job_id).team_id  # type: ignore[union-attr]
        for jid in (job_id, keep):
            write_metric_points(session=session, job_id=jid, points=[("lr", 1, 0.1, 0.1)])
        add_artifact(
            session=session, job_id=job_id, team_id=team_id, name="checkpoint.pt",
            kind="checkpoint", path=f"{job_id}/checkpoint.pt", size_bytes=5,
        )  # fmt: skip

    queued = client.delete(f"/v1/jobs/{job_id}")
    assert queued.status_code == 409 and "cancel it first" in queued.json()["detail"]
    client.post(f"/v1/jobs/{job_id}/cancel")
    r = client.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "id": job_id, "deleted": {"metric_points": 1, "artifacts": 1, "benchmark_links": 0}
    }  # fmt: skip
    assert not (root / job_id).exists()
    assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 404
    with session_scope(app.state.session_factory) as session:
        left = session.query(MetricPoint.job_id).all()
    assert left == [(keep,)]  # the other job's points stay


def test_deleting_a_benchmark_job_unlinks_it(client: TestClient, app: FastAPI) -> None:
    bench = _benchmark(client, "grid")
    first = client.get(f"/v1/benchmarks/{bench['id']}").json()["job_list"][0]["job_id"]
    _set(app, first, status="failed")
    assert client.delete(f"/v1/jobs/{first}").json()["deleted"]["benchmark_links"] == 1
    assert client.get(f"/v1/benchmarks/{bench['id']}").json()["jobs"] == 3


def test_a_read_only_key_cannot_delete_or_cancel(
    auth_client: TestClient, auth_app: FastAPI
) -> None:
    reader = {"Authorization": f"Bearer {new_key(auth_app, 'lab', read_only=True)}"}
    assert auth_client.delete("/v1/jobs/x", headers=reader).status_code == 403
    assert auth_client.post("/v1/benchmarks/x/cancel", headers=reader).status_code == 403


def test_keys_list_the_teams_keys_without_secrets(
    auth_client: TestClient, auth_app: FastAPI
) -> None:
    mine = [new_key(auth_app, "vision"), new_key(auth_app, "vision", read_only=True)]
    new_key(auth_app, "audio")  # another team's
    with session_scope(auth_app.state.session_factory) as session:
        revoke_api_key(session=session, key=mine[0])
        hashes = {k.key_hash for k in session.query(ApiKey).all()}
    r = auth_client.get("/v1/keys", headers={"Authorization": f"Bearer {mine[1]}"})
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(k["prefix"], k["read_only"], k["revoked"]) for k in items] == [
        (mine[1][:11], True, False), (mine[0][:11], False, True)
    ]  # fmt: skip
    text = r.text
    assert not any(secret in text for secret in [*mine, *hashes])
    assert set(items[0]) == {"id", "prefix", "read_only", "created_at", "revoked", "revoked_at"}


def test_uploads_list_is_paginated(client: TestClient, app: FastAPI) -> None:
    from store.datasets import create_dataset

    with session_scope(app.state.session_factory) as session:
        team_id = session.get(Job, client.post("/v1/jobs", json=spec()).json()["id"]).team_id  # type: ignore[union-attr]
        shapes = {
            "task": "classification", "num_outputs": 2, "input_shape": [2], "n_train": 4,
            "n_test": 2, "arrays": {},
        }  # fmt: skip
        made = [
            create_dataset(
                session=session, team_id=team_id, name=f"d{i}", size_bytes=1, shapes=shapes
            ).id
            for i in range(3)
        ]
    listed = _walk(client, "/v1/datasets/uploads", limit=2)
    assert sorted(d["id"] for d in listed) == sorted(made) and len(listed) == 3


def test_artifacts_download_with_a_media_type_by_kind(client: TestClient, app: FastAPI) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    root = app.state.settings.artifacts_dir
    (root / job_id).mkdir(parents=True)
    expected = {
        "checkpoint.pt": "application/octet-stream",
        "final.pt": "application/octet-stream",
        "hessian_density_step10.json": "application/json",
        "curve.png": "image/png",
        "notes.weird": "application/octet-stream",
    }
    with session_scope(app.state.session_factory) as session:
        team_id = session.get(Job, job_id).team_id  # type: ignore[union-attr]
        for name in expected:
            (root / job_id / name).write_bytes(b"x")
            add_artifact(
                session=session, job_id=job_id, team_id=team_id, name=name, kind="plot",
                path=f"{job_id}/{name}",
            )  # fmt: skip
    for name, media in expected.items():
        r = client.get(f"/v1/jobs/{job_id}/artifacts/{name}")
        assert r.headers["content-type"] == media, name


def test_the_api_answer_lists_the_skipped_axes(client: TestClient) -> None:
    body = {"base": spec(optimizer={"name": "sgd"}), "seeds": [0]}
    body["axes"] = {
        "optimizer": [{"name": "sgd"}, {"name": "sam"}, {"name": "asam"}],
        "optimizer.rho": [0.05, 0.1],
    }
    r = client.post("/v1/benchmarks", json=body)
    assert r.status_code == 202, r.text
    assert (r.json()["jobs"], r.json()["skipped_axes"]) == (5, {"optimizer.rho": ["sgd"]})
    labels = [j["label"] for j in client.get(f"/v1/benchmarks/{r.json()['id']}").json()["job_list"]]
    assert sorted(labels) == sorted(
        ["sgd", *(f"{o}·rho={r}" for o in ("sam", "asam") for r in (0.05, 0.1))]
    )
