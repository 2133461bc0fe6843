"""Bearer API keys: every resource belongs to a team; read-only keys cannot write."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from store.db import session_scope
from store.keys import revoke_api_key
from tests.unit.api.conftest import new_key, spec


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_request_without_a_key_is_401_problem(auth_client: TestClient) -> None:
    r = auth_client.get("/v1/jobs")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.headers["content-type"] == "application/problem+json"
    assert auth_client.get("/v1/optimizers").status_code == 401


def test_unknown_or_revoked_key_is_401(auth_client: TestClient, auth_app: FastAPI) -> None:
    key = new_key(auth_app, "lab")
    assert auth_client.get("/v1/jobs", headers=_auth(key)).status_code == 200
    with session_scope(auth_app.state.session_factory) as session:
        revoke_api_key(session=session, key=key)
    assert auth_client.get("/v1/jobs", headers=_auth(key)).status_code == 401
    assert auth_client.get("/v1/jobs", headers=_auth("fl_made_up")).status_code == 401


def test_read_only_key_reads_but_cannot_post(auth_client: TestClient, auth_app: FastAPI) -> None:
    writer, reader = new_key(auth_app, "lab"), new_key(auth_app, "lab", read_only=True)
    job_id = auth_client.post("/v1/jobs", json=spec(), headers=_auth(writer)).json()["id"]
    r = auth_client.post("/v1/jobs", json=spec(), headers=_auth(reader))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert auth_client.post(f"/v1/jobs/{job_id}/cancel", headers=_auth(reader)).status_code == 403
    assert auth_client.get(f"/v1/jobs/{job_id}", headers=_auth(reader)).status_code == 200


def test_another_teams_job_is_404(auth_client: TestClient, auth_app: FastAPI) -> None:
    mine, theirs = new_key(auth_app, "lab"), new_key(auth_app, "rivals")
    job_id = auth_client.post("/v1/jobs", json=spec(), headers=_auth(mine)).json()["id"]
    for path in ("", "/metrics", "/artifacts"):
        assert auth_client.get(f"/v1/jobs/{job_id}{path}", headers=_auth(theirs)).status_code == 404
    assert auth_client.post(f"/v1/jobs/{job_id}/cancel", headers=_auth(theirs)).status_code == 404
    assert auth_client.get("/v1/jobs", headers=_auth(theirs)).json()["items"] == []


def test_idempotency_keys_are_per_team(auth_client: TestClient, auth_app: FastAPI) -> None:
    mine, theirs = new_key(auth_app, "lab"), new_key(auth_app, "rivals")
    same = {"Idempotency-Key": "k"}
    a = auth_client.post("/v1/jobs", json=spec(), headers={**_auth(mine), **same}).json()
    b = auth_client.post("/v1/jobs", json=spec(), headers={**_auth(theirs), **same}).json()
    assert a["id"] != b["id"]


def test_probes_and_docs_need_no_key(auth_client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert auth_client.get(path).status_code == 200, path


def test_with_auth_off_requests_act_as_the_default_team(client: TestClient) -> None:
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    assert client.get(f"/v1/jobs/{job_id}").status_code == 200
