"""Jobs repository: filter columns, keyset pagination, filters and cancellation, both backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sam_core.spec import JobSpec
from store.db import session_scope
from store.errors import Conflict, InvalidRequest, NotFound
from store.jobs import JobFilters, create_job, get_job, list_jobs, queue_for, request_cancel
from store.models import Job, utcnow


def _spec(optimizer: str = "sgd", device: str = "auto", **extra: Any) -> JobSpec:
    body = {
        "model": {"name": "mlp"},
        "data": {"name": "digits"},
        "optimizer": {"name": optimizer, "label": f"{optimizer}-x"},
        "training": {"device": device, "seed": 3},
        **extra,
    }
    return JobSpec.model_validate(body)


def _create(session: Session, team: str = "t", **kwargs: Any) -> Job:
    return create_job(session=session, team_id=team, spec=_spec(**kwargs), max_attempts=2)


def test_create_copies_filter_columns_from_the_spec(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        job = _create(session, optimizer="sam", tags=["a", "b"], name="n")
    assert (job.status, job.optimizer, job.label, job.model, job.dataset, job.seed) == (
        "queued", "sam", "sam-x", "mlp", "digits", 3
    )  # fmt: skip
    assert (job.tags, job.name, job.max_attempts, job.queue) == (["a", "b"], "n", 2, "cpu")
    assert job.spec_hash == _spec(optimizer="sam").hash()


QUEUES = [
    ("cuda", "cpu", "gpu"),
    ("cpu", "gpu", "cpu"),
    ("auto", "cpu", "cpu"),
    ("auto", "gpu", "gpu"),
]


@pytest.mark.parametrize(("device", "auto", "queue"), QUEUES)
def test_queue_follows_the_device(device: str, auto: str, queue: str) -> None:
    assert queue_for(_spec(device=device), auto) == queue


def test_pagination_walks_every_job_exactly_once(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        same_time = utcnow()
        created = {_create(session).id for _ in range(23)}
        for job in session.query(Job).limit(10):  # ties on created_at are broken by id
            job.created_at = same_time
    seen: list[str] = []
    cursor = None
    while True:
        with session_scope(factory) as session:
            page, cursor = list_jobs(session=session, team_id="t", limit=5, cursor=cursor)
        seen += [j.id for j in page]
        if cursor is None:
            break
    assert len(seen) == 23 and set(seen) == created


def test_list_is_newest_first(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        old, new = _create(session), _create(session)
        old.created_at = utcnow() - timedelta(hours=1)
    with session_scope(factory) as session:
        page, _ = list_jobs(session=session, team_id="t")
    assert [j.id for j in page] == [new.id, old.id]


def test_filters_combine_and_stay_within_the_team(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        sam = _create(session, optimizer="sam", tags=["x", "y"])
        _create(session, optimizer="sgd", tags=["x"])
        _create(session, team="other", optimizer="sam", tags=["y"])

    def ids(**f: str) -> list[str]:
        with session_scope(factory) as session:
            return [
                j.id for j in list_jobs(session=session, team_id="t", filters=JobFilters(**f))[0]
            ]

    assert ids(optimizer="sam") == [sam.id]
    assert ids(tag="y") == [sam.id]
    assert len(ids(tag="x")) == 2
    assert ids(tag="x", optimizer="sam", status="queued", spec_hash=sam.spec_hash) == [sam.id]
    assert ids(status="running") == []
    assert ids(model="cnn") == [] and len(ids(dataset="digits")) == 2


def test_bad_cursor_and_status_are_invalid_requests(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session, pytest.raises(InvalidRequest):
        list_jobs(session=session, team_id="t", cursor="%%%")
    with session_scope(factory) as session, pytest.raises(InvalidRequest):
        list_jobs(session=session, team_id="t", filters=JobFilters(status="done"))


def test_another_teams_job_is_not_found(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        job = _create(session)
    with session_scope(factory) as session, pytest.raises(NotFound):
        get_job(session=session, job_id=job.id, team_id="other")


def test_cancel_of_a_queued_job_is_immediate(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        job = _create(session)
    with session_scope(factory) as session:
        job = request_cancel(session=session, team_id="t", job_id=job.id)
    assert (job.status, job.failure_reason) == ("cancelled", "cancelled")
    assert job.finished_at is not None
    with session_scope(factory) as session, pytest.raises(Conflict):
        request_cancel(session=session, team_id="t", job_id=job.id)


def test_cancel_of_a_running_job_asks_the_worker(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        job = _create(session)
        job.status = "running"
    with session_scope(factory) as session:
        job = request_cancel(session=session, team_id="t", job_id=job.id)
        first = job.cancel_requested_at
        again = request_cancel(session=session, team_id="t", job_id=job.id)
    assert job.status == "running" and first is not None
    assert again.cancel_requested_at == first
