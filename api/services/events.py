"""A job's live events for server-sent events: `status` changes and new `metric` points.

The stream reads the database, not the broker, so it works the same embedded
and deployed. Each event's id is the id of the last metric point sent, so a
client that reconnects with `Last-Event-ID` gets only what it has not seen.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sqlalchemy.orm import Session, sessionmaker

from api.schemas import JobStatusEvent, MetricPointPublic
from store.jobs import get_job
from store.metrics import read_metric_points
from store.models import TERMINAL_STATUSES

BATCH = 1000


def _poll(
    factory: sessionmaker[Session], job_id: str, team_id: str, after_id: int
) -> tuple[JobStatusEvent, list[dict[str, Any]], int]:
    """The job's state, then the points written after `after_id` (read in that order).

    Reading the status first means that once it is terminal, the points read
    after it include every point the worker wrote before finishing.
    """
    with factory() as session:  # read only: closing rolls back
        status = JobStatusEvent.from_job(get_job(session=session, job_id=job_id, team_id=team_id))
        points = read_metric_points(session=session, job_id=job_id, after_id=after_id, limit=BATCH)
        metrics = [
            {"id": p.id, "name": p.name, **MetricPointPublic.from_point(p).model_dump(mode="json")}
            for p in points
        ]
    return status, metrics, len(points)


async def job_events(
    factory: sessionmaker[Session],
    job_id: str,
    team_id: str,
    last_event_id: int = 0,
    poll_seconds: float = 0.5,
    limiter: anyio.CapacityLimiter | None = None,
) -> AsyncIterator[dict[str, str]]:
    """Yield SSE events until the job's status is terminal and every point has been sent."""
    after_id, sent = last_event_id, None
    while True:
        status, metrics, n = await anyio.to_thread.run_sync(
            _poll, factory, job_id, team_id, after_id, limiter=limiter
        )
        if sent is None:  # the first event always says where the job stands
            sent = status
            yield _event("status", after_id, status.model_dump_json())
        for point in metrics:
            after_id = point.pop("id")
            yield _event("metric", after_id, _dumps(point))
        if status != sent:
            sent = status
            yield _event("status", after_id, status.model_dump_json())
        if status.status in TERMINAL_STATUSES and n < BATCH:
            return
        if n < BATCH:
            await anyio.sleep(poll_seconds)


def _event(kind: str, event_id: int, data: str) -> dict[str, str]:
    return {"event": kind, "id": str(event_id), "data": data}


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))
