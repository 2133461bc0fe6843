"""Idempotency under concurrency, on PostgreSQL: 50 simultaneous retries create one job."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import migrations
from api.app import create_app
from store.models import Job
from tests.pg import temporary_database
from tests.unit.api.conftest import make_settings, spec


@pytest.fixture
def pg_client(tmp_path: Path) -> Iterator[TestClient]:
    with temporary_database() as url:
        migrations.upgrade(url)
        app = create_app(make_settings(tmp_path, database_url=url, auth_required=False))
        with TestClient(app) as client:
            yield client
        app.state.engine.dispose()


def test_fifty_concurrent_retries_create_one_job(pg_client: TestClient) -> None:
    def submit(_: int) -> tuple[int, str]:
        r = pg_client.post("/v1/jobs", json=spec(), headers={"Idempotency-Key": "same"})
        return r.status_code, r.json().get("id", r.text)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(submit, range(50)))
    app = pg_client.app
    with app.state.session_factory() as session:  # type: ignore[attr-defined]
        stored = session.scalar(select(func.count()).select_from(Job))
    assert {status for status, _ in answers} == {202}, [a for a in answers if a[0] != 202][:2]
    assert len({job_id for _, job_id in answers}) == 1 and stored == 1


def test_concurrent_different_bodies_with_one_key_create_one_job(pg_client: TestClient) -> None:
    def submit(seed: int) -> int:
        body = spec(training={"epochs": 1, "seed": seed % 2})
        return pg_client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k"}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(submit, range(20)))
    assert set(statuses) == {202, 422} and statuses.count(202) >= 1
