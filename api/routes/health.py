"""/healthz (the process answers), /readyz (database and broker reachable, queues), /metrics.

`/readyz` also lists each queue with its live workers (from the `workers`
table their heartbeats keep fresh) and its queued jobs: a queue with jobs
and no worker is where jobs wait for good. It stays 200 then (the API is
ready), and names the queue in `waiting_reason`.

The probes never queue behind work: `/healthz` is answered in the event loop,
and `/readyz` and `/metrics` read through an engine of their own (one
connection) in threads of their own limiter (`api.db_gate`), so a server busy
with requests still says promptly whether it is alive and ready.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.db_gate import gate
from api.deps import MetricsAccessDep
from api.schemas import Health, QueueHealth, Readiness
from store.db import session_scope
from store.errors import Unavailable
from store.jobs import count_jobs_by_status, count_queued_by_queue
from store.workers import live_queues, skewed_workers, waiting_reason

router = APIRouter(tags=["health"])
T = TypeVar("T")


async def _probe(request: Request, func: Callable[[Request], T]) -> T:
    return await anyio.to_thread.run_sync(func, request, limiter=gate(request.app).probe)


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process serves requests."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "not ready"}})
async def readyz(request: Request) -> Readiness:
    """Readiness: the database answers a query and the broker accepts a connection."""
    checks = {
        "database": await _probe(request, _check_database),
        "broker": await _probe(request, _check_broker),
    }
    down = sorted(name for name, result in checks.items() if result != "ok")
    if down:
        raise Unavailable(f"not ready: {' and '.join(down)} unreachable", checks=checks)
    return Readiness(
        status="ready",
        checks=checks,
        queues=await _probe(request, _queues),
        clock_skew=await _probe(request, _skew),
    )


def _probe_session(request: Request) -> Any:
    return session_scope(request.app.state.probe_sessions)


def _queues(request: Request) -> dict[str, QueueHealth]:
    stale = request.app.state.settings.worker_stale_seconds
    with _probe_session(request) as session:
        live = live_queues(session=session, stale_seconds=stale)
        queued = count_queued_by_queue(session=session)
    return {
        name: QueueHealth(
            workers=live.get(name, []),
            queued_jobs=queued.get(name, 0),
            waiting_reason=waiting_reason(name, live),
        )
        for name in sorted(set(live) | set(queued))
    }


def _skew(request: Request) -> dict[str, float]:
    settings = request.app.state.settings
    with _probe_session(request) as session:
        return skewed_workers(
            session=session,
            stale_seconds=settings.worker_stale_seconds,
            bound_seconds=settings.clock_skew_seconds,
        )


def _check_database(request: Request) -> str:
    try:
        with request.app.state.probe_engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def _check_broker(request: Request) -> str:
    try:
        with request.app.state.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, _: MetricsAccessDep) -> Response:
    """Prometheus text format: request counts and latency, jobs by status.
    With auth on, send `Authorization: Bearer <FLATLAB_METRICS_TOKEN>`."""
    return Response(await _probe(request, _scrape), media_type=CONTENT_TYPE_LATEST)


def _scrape(request: Request) -> bytes:
    api_metrics = request.app.state.metrics
    with _probe_session(request) as session:
        for status, count in count_jobs_by_status(session=session).items():
            api_metrics.jobs.labels(status).set(count)
    return generate_latest(api_metrics.registry)
