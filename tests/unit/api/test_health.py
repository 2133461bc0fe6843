"""Probes, Prometheus metrics, and problem JSON when the database is down."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from store.db import make_engine, make_session_factory
from tests.unit.api.conftest import make_settings, new_key, spec

DEAD_DB = "postgresql+psycopg://postgres@127.0.0.1:1/flatlab"


def test_healthz_and_readyz_answer_when_all_is_up(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["checks"] == {"database": "ok", "broker": "ok"}
    assert {name: q["workers"] for name, q in ready["queues"].items()} == {"cpu": [], "gpu": []}


def test_readyz_is_503_naming_the_database_when_it_is_down(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, database_url=DEAD_DB))) as client:
        r = client.get("/readyz")
    body = r.json()
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert "database" in body["detail"] and body["checks"]["broker"] == "ok"
    assert body["checks"]["database"] != "ok"


def test_readyz_names_the_broker_when_it_is_down(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["detail"] == "not ready: broker unreachable"


def test_requests_while_the_database_is_down_are_503_problems(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=DEAD_DB, auth_required=False)
    with TestClient(create_app(settings)) as client:
        for r in (client.get("/v1/jobs"), client.post("/v1/jobs", json=spec())):
            assert r.status_code == 503 and r.json()["code"] == "database_unavailable"


def test_unexpected_errors_are_500_problems_without_a_trace(client: TestClient) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    with TestClient(client.app, raise_server_exceptions=False) as quiet:  # type: ignore[arg-type]
        r = quiet.get("/boom")
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert "secret" not in r.text


def test_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    assert client.get("/v1/nothing").json()["status"] == 404
    r = client.put("/v1/jobs")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"


def test_metrics_count_requests_and_jobs_by_status(client: TestClient) -> None:
    client.post("/v1/jobs", json=spec())
    client.get("/v1/jobs/unknown")
    text = client.get("/metrics").text
    assert 'flatlab_jobs{status="queued"} 1.0' in text
    assert 'route="/v1/jobs/{job_id}",status="404"' in text
    assert "flatlab_http_request_duration_seconds_bucket" in text


def test_openapi_documents_every_route_with_a_response_model(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/optimizers"} <= set(
        paths
    )
    ok = paths["/v1/jobs/{job_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/JobPublic")


def test_a_request_finding_every_pooled_connection_busy_is_a_503_not_a_500(
    app: FastAPI, client: TestClient
) -> None:
    # A frozen database keeps the pool's connections busy: the next request must
    # wait its pool timeout and then answer "unavailable", not crash.
    engine = make_engine(app.state.settings.db_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    app.state.session_factory = make_session_factory(engine)
    with engine.connect():
        r = client.get("/v1/jobs")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "database_unavailable"
    engine.dispose()


def test_metrics_with_auth_on_answer_only_the_scrape_token(tmp_path: Path) -> None:
    # /metrics shows every team's job counts: a team's key does not open it.
    closed = create_app(make_settings(tmp_path / "closed", auth_required=True))
    token = "scrape-" + "s" * 24
    settings = make_settings(tmp_path / "open", auth_required=True, metrics_token=token)
    with TestClient(closed) as client:
        key = new_key(closed, "lab")
        for headers in ({}, {"Authorization": f"Bearer {key}"}):
            r = client.get("/metrics", headers=headers)
            assert r.status_code == 403 and "FLATLAB_METRICS_TOKEN" in r.json()["detail"]
    scraper = create_app(settings)
    with TestClient(scraper) as client:
        key = new_key(scraper, "lab")
        for headers in ({}, {"Authorization": f"Bearer {key}"}, {"Authorization": "Bearer no"}):
            r = client.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "flatlab_jobs" in r.text
