"""No lock-up whatever the pool size: the kind fixed, not the number (PostgreSQL).

With `db_pool_size=2`, sixty requests at once to every kind of read route (async
ones doing their work in one thread, sync ones covered by the slot they take)
all get their answer: a request waits for a slot in the event loop, holding
nothing, instead of holding a connection while it waits for a thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import migrations
from api.app import create_app
from api.db_gate import GateSizes
from tests.pg import temporary_database
from tests.unit.api.conftest import make_settings, spec


@pytest.fixture
def small_pool_client(tmp_path: Path) -> Iterator[TestClient]:
    with temporary_database() as url:
        migrations.upgrade(url)
        settings = make_settings(tmp_path, database_url=url, auth_required=False, db_pool_size=2)
        app = create_app(settings)
        with TestClient(app) as client:
            yield client
        app.state.engine.dispose()
        app.state.probe_engine.dispose()


def test_sixty_concurrent_reads_on_a_pool_of_two_all_answer(small_pool_client: TestClient) -> None:
    client = small_pool_client
    job_id = client.post("/v1/jobs", json=spec()).json()["id"]
    paths = [
        f"/v1/jobs/{job_id}",  # async, one thread
        "/v1/jobs",
        f"/v1/jobs/{job_id}/metrics?format=columns",
        "/v1/benchmarks",  # sync, covered by its slot
        "/v1/results",
        "/v1/datasets/uploads",
        "/healthz",
        "/readyz",
    ]

    def get(i: int) -> tuple[str, int]:
        path = paths[i % len(paths)]
        return path, client.get(path).status_code

    with ThreadPoolExecutor(max_workers=60) as pool:
        answers = list(pool.map(get, range(60)))
    assert [a for a in answers if a[1] != 200 and a[0] != "/readyz"] == []
    # /readyz may say the broker (none here) is down, but it answers
    assert {status for path, status in answers if path == "/readyz"} <= {200, 503}


def test_pool_threads_and_slots_follow_from_one_setting() -> None:
    for n in (1, 2, 16, 100):
        sizes = GateSizes.from_pool(n)
        # every holder of a connection (slots, reserve) has a thread to spare
        assert sizes.slots == n and sizes.threads > sizes.slots + sizes.reserve
        assert sizes.engine_kwargs()["pool_size"] == n
        assert sizes.engine_kwargs()["max_overflow"] == sizes.reserve
