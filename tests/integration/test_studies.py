"""Studies end to end: the real API drives Optuna, real workers train the trials."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from store.models import Job, StudyTrial
from tests.integration.specs import DIGITS, spec

pytestmark = pytest.mark.integration

# Twenty-four epochs of 29 steps, points written every 0.1 s (the stack's
# FLATLAB_METRIC_FLUSH_SECONDS): long enough that the driver hears a trial's
# evaluations while it runs, so that the pruner can stop it.
EPOCHS = 24
BASE = spec(
    DIGITS,
    **{
        "name": "it-study",
        "data": {"name": "digits", "batch_size": 40, "validation_fraction": 0.2},
        "model": {"name": "mlp", "hidden": [32]},
        "training.epochs": EPOCHS,
        "measure": {"every_epochs": 1, "num_examples": 64},
    },
)
STUDY = {
    "name": "it-sam-lr-rho",
    "base": BASE,
    "search_space": {
        "optimizer.base.lr": {"type": "log_uniform", "low": 0.0003, "high": 1.0},
        "optimizer.rho": {"type": "log_uniform", "low": 0.01, "high": 0.5},
    },
    "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 4},
    "pruner": {"name": "median", "n_startup_trials": 3},
    "budget": {"trials": 12, "parallel": 2},
    "objective": {"metric": "final_val_loss", "direction": "minimize"},
}


def wait_for_study(client, study_id: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        study = client.get(f"/v1/studies/{study_id}").raise_for_status().json()
        if study["status"] != "running":
            return study
        if time.monotonic() > deadline:
            raise TimeoutError(f"study never finished: {study['trials_by_state']}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def study(client) -> dict:
    response = client.post("/v1/studies", json=STUDY)
    assert response.status_code == 202, response.text
    return wait_for_study(client, response.json()["id"])


def test_study_runs_every_trial_as_a_job_and_prunes_some(study, session_factory):
    assert study["status"] == "succeeded", study
    trials = study["trials"]
    assert [t["number"] for t in trials] == list(range(12))
    assert study["trials_by_state"]["running"] == 0
    assert study["trials_by_state"]["pruned"] >= 1, study["trials_by_state"]
    job_ids = {t["job_id"] for t in trials}
    with session_factory() as session:
        jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids)))}
        rows = session.scalars(select(StudyTrial).where(StudyTrial.study_id == study["id"]))
        assert len(list(rows)) == 12
    assert set(jobs) == job_ids  # each trial is an ordinary job
    for trial in trials:
        job = jobs[trial["job_id"]]
        assert trial["job_status"] == job.status
        if trial["state"] == "pruned":
            assert job.status == "pruned" and job.failure_reason == "pruned"
            assert "pruned at step" in job.error and job.summary["epochs"] < EPOCHS
        if trial["state"] == "complete":
            assert job.status == "succeeded"
            assert trial["value"] == job.summary["final_val_loss"]
            lr, rho = trial["params"]["optimizer.base.lr"], trial["params"]["optimizer.rho"]
            assert job.spec["optimizer"]["base"]["lr"] == lr
            assert job.spec["optimizer"]["rho"] == rho


def test_best_value_is_the_best_trials_summary(study, client):
    complete = [t for t in study["trials"] if t["state"] == "complete"]
    best = min(complete, key=lambda t: t["value"])
    assert study["best_value"] == best["value"]
    assert study["best"]["trial"] == best["number"]
    assert study["best"]["params"] == best["params"]
    job = client.get(f"/v1/jobs/{best['job_id']}").raise_for_status().json()
    assert job["summary"]["final_val_loss"] == study["best_value"]
    curve = study["history"]
    assert [p["trials"] for p in curve] == list(range(1, 13))
    assert curve[-1]["best_value"] == study["best_value"]
    values = [p["best_value"] for p in curve if p["best_value"] is not None]
    assert values == sorted(values, reverse=True)  # best so far never gets worse


def test_a_test_set_objective_is_refused_naming_the_field(client):
    body = {**STUDY, "objective": {"metric": "final_test_acc", "direction": "maximize"}}
    response = client.post("/v1/studies", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "objective.metric"
    assert "test set" in response.json()["errors"][0]["msg"]


def test_a_path_the_optimizer_lacks_is_refused_naming_it(client):
    base = spec(BASE, optimizer={"name": "sgd", "base": {"name": "sgd", "lr": 0.1}})
    body = {**STUDY, "base": base}
    response = client.post("/v1/studies", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == "search_space.optimizer.rho"


def test_studies_are_listed_and_a_finished_one_cannot_be_cancelled(study, client):
    listed = client.get("/v1/studies").raise_for_status().json()
    assert study["id"] in [s["id"] for s in listed["items"]]
    response = client.post(f"/v1/studies/{study['id']}/cancel")
    assert response.status_code == 409
