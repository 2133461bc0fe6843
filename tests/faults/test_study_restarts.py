"""A study loses no trial when its API is killed and restarted and a worker dies mid-trial."""

from __future__ import annotations

import sys
import time

import httpx
from sqlalchemy import select

from store.db import session_scope
from store.models import Job, StudyTrial
from tests.faults.conftest import LONG, kill_group, wait_job
from tests.integration.conftest import Process, free_port
from tests.integration.specs import spec

STUDY = {
    "name": "faults-study",
    "base": spec(LONG, **{"data.validation_fraction": 0.25, "training.epochs": 60}),
    "search_space": {"optimizer.base.lr": {"type": "uniform", "low": 0.01, "high": 0.05}},
    "sampler": {"name": "random", "seed": 0},
    "pruner": {"name": "none"},
    "budget": {"trials": 4, "parallel": 1},
    "objective": {"metric": "final_val_loss", "direction": "minimize"},
}


def start_api(env: dict[str, str], log_dir, name: str) -> tuple[Process, str]:
    """An API that drives studies (the session's API does not), ready."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(port)]
    proc = Process(name, argv, {**env, "FLATLAB_STUDY_POLL_SECONDS": "0.3"}, log_dir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, proc.log()[-3000:]
        time.sleep(0.2)


def trial_jobs(db, study_id: str) -> list[tuple[int, Job]]:
    with session_scope(db) as session:
        stmt = select(StudyTrial.number, Job).join(Job, Job.id == StudyTrial.job_id)
        rows = session.execute(stmt.where(StudyTrial.study_id == study_id)).all()
        session.expunge_all()
        return sorted((number, job) for number, job in rows)


def test_a_killed_api_and_a_killed_worker_lose_no_trial(
    client, db, start_worker, fault_env, log_dir
):
    doomed = start_worker("worker-study-doomed")
    api, url = start_api(fault_env, log_dir, "api-study-1")
    try:
        response = client.post(f"{url}/v1/studies", json=STUDY)
        assert response.status_code == 202, response.text
        study_id = response.json()["id"]
        deadline = time.monotonic() + 90
        while not (rows := trial_jobs(db, study_id)):
            assert time.monotonic() < deadline, "the driver created no trial"
            time.sleep(0.2)
        first = rows[0][1].id
        wait_job(db, first, lambda j: j.checkpoint_path is not None and j.step >= 20)
    finally:
        kill_group(api)  # the driver dies with its API: no goodbye
    kill_group(doomed)  # and the first trial's worker, mid-run
    start_worker("worker-study-rescuer")
    api, url = start_api(fault_env, log_dir, "api-study-2")
    try:
        deadline = time.monotonic() + 240
        while (study := client.get(f"{url}/v1/studies/{study_id}").json())["status"] == "running":
            assert time.monotonic() < deadline, study["trials_by_state"]
            time.sleep(0.5)
    finally:
        api.stop()
    assert study["status"] == "succeeded", study
    rows = trial_jobs(db, study_id)
    assert [n for n, _ in rows] == [0, 1, 2, 3]  # every trial once: none lost, none doubled
    assert all(job.status == "succeeded" for _, job in rows)
    rescued = dict(rows)[0]
    assert (rescued.attempts, rescued.infra_failures) == (2, 1)
    assert study["trials_by_state"]["complete"] == 4
    best = min(study["trials"], key=lambda t: t["value"])
    assert study["best_value"] == best["value"]
