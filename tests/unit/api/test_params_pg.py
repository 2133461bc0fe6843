"""On PostgreSQL, whose columns are typed: out-of-range integers and NULs are 4xx, never 500,
and the new list, cancel and delete endpoints and metric pages work on its SQL."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import migrations
from api.app import create_app
from store.db import session_scope
from store.metrics import write_metric_points
from store.models import Job
from tests.pg import temporary_database
from tests.unit.api.conftest import make_settings, spec


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, FastAPI]]:
    with temporary_database() as url:
        migrations.upgrade(url)
        home = tmp_path_factory.mktemp("pg")
        app = create_app(make_settings(Path(home), database_url=url, auth_required=False))
        with TestClient(app) as client:
            yield client, app
        app.state.engine.dispose()


def _finished_job(client: TestClient, app: FastAPI, steps: int) -> str:
    job_id: str = client.post("/v1/jobs", json=spec()).json()["id"]
    with session_scope(app.state.session_factory) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.summary = "succeeded", {"final_test_acc": 0.9, "my_probe": 1.0}
        points = [(n, s, s / 10, float(s)) for n in ("lr", "rho") for s in range(steps)]
        write_metric_points(session=session, job_id=job_id, points=points)
    return job_id


def test_out_of_range_integers_and_nuls_are_4xx(pg: tuple[TestClient, FastAPI]) -> None:
    client, app = pg
    job_id = _finished_job(client, app, 3)
    for url, params in [
        (f"/v1/jobs/{job_id}/metrics", {"since_step": str(2**63)}),
        ("/v1/results", {"filter": "seed:eq:2147483648"}),
        ("/v1/results", {"filter": "seed:in:0,2147483648"}),
        ("/v1/results", {"filter": "label:eq:a\x00b"}),
        ("/v1/jobs", {"spec_hash": "\x00"}),
        ("/v1/benchmarks", {"name": "\x00"}),
    ]:
        r = client.get(url, params=params)
        assert r.status_code == 422, (url, params, r.text)
    assert client.get(f"/v1/jobs/{job_id}%00").status_code == 422
    for url in ("/v1/jobs", "/v1/results", f"/v1/jobs/{job_id}/metrics", "/v1/benchmarks"):
        nul_cursor = base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|1|\x00").decode()
        r = client.get(url, params={"cursor": nul_cursor})
        assert (r.status_code, r.json()["errors"][0]["loc"]) == (400, "cursor"), url
    edge = client.get(f"/v1/jobs/{job_id}/metrics", params={"since_step": str(2**63 - 1)})
    assert edge.status_code == 200 and edge.json()["metrics"] == {}
    found = client.get("/v1/results", params={"filter": "seed:eq:2147483647"})
    assert found.status_code == 200 and found.json()["items"] == []


def test_metric_pages_and_team_summary_keys_on_postgresql(pg: tuple[TestClient, FastAPI]) -> None:
    client, app = pg
    job_id = _finished_job(client, app, 7)
    steps, cursor = [], None
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/v1/jobs/{job_id}/metrics", params=params).json()
        steps += [(n, p["step"]) for n, pts in body["metrics"].items() for p in pts]
        if (cursor := body["next_cursor"]) is None:
            break
    assert steps == [(n, s) for n in ("lr", "rho") for s in range(7)]
    custom = client.get("/v1/results", params={"metrics": "my_probe", "group_by": "optimizer"})
    assert custom.status_code == 200
    typo = client.get("/v1/results", params={"metrics": "my_prob"})
    assert typo.status_code == 422 and "my_probe" in typo.json()["errors"][0]["suggestions"]


def test_benchmark_list_cancel_and_job_delete_on_postgresql(pg: tuple[TestClient, FastAPI]) -> None:
    client = pg[0]
    body = {"name": "pg-grid", "tags": ["pg"], "base": spec(), "seeds": [0, 1]}
    bench = client.post("/v1/benchmarks", json=body).json()
    listed = client.get("/v1/benchmarks", params={"tag": "pg"}).json()["items"]
    assert [(b["id"], b["by_status"]["queued"]) for b in listed] == [(bench["id"], 2)]
    cancelled = client.post(f"/v1/benchmarks/{bench['id']}/cancel").json()
    assert (cancelled["cancelled"], cancelled["stopping"]) == (2, 0)
    job_id = client.get(f"/v1/benchmarks/{bench['id']}").json()["job_list"][0]["job_id"]
    deleted = client.delete(f"/v1/jobs/{job_id}")
    assert deleted.status_code == 200 and deleted.json()["deleted"]["benchmark_links"] == 1
