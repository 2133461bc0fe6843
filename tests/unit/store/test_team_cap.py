"""The per-team cap on running jobs: a claim over it leaves the job queued, untouched."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from sam_core.spec import JobSpec
from store.db import session_scope
from store.jobs import create_job
from store.leases import claim_job, finish_job
from store.models import Job

SPEC = JobSpec.model_validate(
    {"model": {"name": "linear"}, "data": {"name": "teacher_student"}, "optimizer": {"name": "sgd"}}
)


def _jobs(factory, team: str, n: int) -> list[str]:
    with session_scope(factory) as session:
        return [
            create_job(session=session, team_id=team, spec=SPEC, max_attempts=3).id
            for _ in range(n)
        ]


def _claim(factory, job_id: str, worker: str, cap: int | None = 2) -> Job | None:
    with session_scope(factory) as session:
        return claim_job(
            session=session, job_id=job_id, worker_id=worker, lease_seconds=30, team_cap=cap
        )


def _running(factory, team: str) -> int:
    with session_scope(factory) as session:
        stmt = select(func.count()).where(Job.team_id == team, Job.status == "running")
        return int(session.scalar(stmt) or 0)


def test_claim_over_the_team_cap_leaves_the_job_queued_until_one_ends(factory) -> None:
    first, second, third = _jobs(factory, "t", 3)
    assert _claim(factory, first, "w1") is not None
    assert _claim(factory, second, "w2") is not None

    assert _claim(factory, third, "w3") is None
    with session_scope(factory) as session:
        waiting = session.get(Job, third)
        assert (waiting.status, waiting.attempts, waiting.worker_id) == ("queued", 0, None)

    with session_scope(factory) as session:
        finish_job(session=session, job_id=first, worker_id="w1", status="succeeded")
    assert _claim(factory, third, "w3").status == "running"


def test_the_cap_counts_each_team_apart(factory) -> None:
    mine = _jobs(factory, "a", 2)
    theirs = _jobs(factory, "b", 1)
    assert _claim(factory, mine[0], "w1", cap=1) is not None

    assert _claim(factory, mine[1], "w2", cap=1) is None
    assert _claim(factory, theirs[0], "w3", cap=1) is not None


@pytest.mark.parametrize("factory", ["postgresql"], indirect=True)
def test_concurrent_claims_of_one_team_never_pass_the_cap(factory) -> None:
    job_ids = _jobs(factory, "t", 8)

    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda j: _claim(factory, j, f"w-{j}", cap=3), job_ids))

    assert sum(c is not None for c in claimed) == 3
    assert _running(factory, "t") == 3
