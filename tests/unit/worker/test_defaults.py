"""Job timeouts (spec or deployment), a worker's own row, and a SIGTERM that comes early."""

from __future__ import annotations

import os
import signal
import time

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flatlab.settings import Settings
from sam_core.spec import JobSpec
from store.db import session_scope
from store.models import Job, Worker
from store.workers import live_queues
from tests.unit.worker.conftest import TINY, submit
from worker import heartbeat, runner
from worker.heartbeat import StopSignal, job_timeout
from worker.registry import WorkerRegistration, visible_devices

LONG = {**TINY, "training": {**TINY["training"], "epochs": 5000}}


def test_a_spec_without_a_limit_has_none_unless_the_deployment_sets_one() -> None:
    assert JobSpec.model_validate(TINY).limits.timeout_s is None
    assert job_timeout(None, None) is None
    assert job_timeout(None, 7200) == 7200
    assert job_timeout(60, 7200) == 60, "the spec's own limit wins"


def test_the_deployment_timeout_stops_a_job_whose_spec_sets_none(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    job_id = submit(factory, LONG)
    limited = settings.model_copy(update={"job_timeout_seconds": 1})
    assert runner.run_job(job_id, limited) == "failed"
    with session_scope(factory) as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.failure_reason == "timeout" and "FLATLAB_JOB_TIMEOUT_SECONDS" in job.error
        assert job.total_steps is not None and job.step < job.total_steps


def test_visible_devices_come_from_cuda_visible_devices() -> None:
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "0"}) == ["cuda:0"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["cuda:2", "cuda:3"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == ["cpu"]
    assert visible_devices({}) == ["cpu"]


def test_a_worker_registers_its_queues_refreshes_its_row_and_removes_it_on_close(
    factory: sessionmaker[Session],
) -> None:
    registration = WorkerRegistration(
        factory, worker_id="gpu0-1@h", queues=["gpu"], interval=0.05, devices=["cuda:0"]
    )
    registration.start()
    deadline = time.monotonic() + 30
    while True:
        with session_scope(factory) as session:
            row = session.get(Worker, "gpu0-1@h")
            if row is not None:
                break
        assert time.monotonic() < deadline, "the worker never registered"
        time.sleep(0.05)
    assert (row.queues, row.devices) == (["gpu"], ["cuda:0"])
    with session_scope(factory) as session:  # the row is deleted meanwhile: the beat restores it
        session.delete(session.get(Worker, "gpu0-1@h"))
    while True:
        with session_scope(factory) as session:
            if live_queues(session=session, stale_seconds=30)["gpu"] == ["gpu0-1@h"]:
                break
        assert time.monotonic() < deadline, "the heartbeat never registered it again"
        time.sleep(0.05)
    registration.close()
    with session_scope(factory) as session:
        assert session.scalars(select(Worker)).all() == []


def test_a_sigterm_before_the_run_stops_it_at_its_first_step() -> None:
    """A pool child told to stop while it imports torch starts no training (`flatlab down`)."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        heartbeat.remember_sigterm()
        os.kill(os.getpid(), signal.SIGTERM)
        assert heartbeat.terminated(), "remembered, and the process lives on"
        stop = StopSignal(None)
        with heartbeat.sigterm_stops(stop):
            assert stop() and stop.reason == "shutdown"
    finally:
        signal.signal(signal.SIGTERM, previous)
        heartbeat._terminated.clear()
