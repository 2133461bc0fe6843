"""Studies through the API on SQLite, the driver run by hand: jobs stand in for workers.

The driver keeps nothing in memory between passes (each test drops Optuna's cached
storage before a pass, as a restarted API would start), so what it does follows from
the rows alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from api.services import optuna_glue
from api.services.study_driver import drive_once
from store.db import session_scope
from store.leases import finish_job
from store.models import Job, MetricPoint, StudyTrial, utcnow
from tests.unit.api.conftest import spec

BASE = spec(data={"name": "digits", "validation_fraction": 0.2})


def body(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "base": BASE,
        "search_space": {"optimizer.base.lr": {"type": "categorical", "choices": [0.05, 0.1, 0.2]}},
        "sampler": {"name": "grid"},
        "pruner": {"name": "none"},
        "budget": {"trials": 3, "parallel": 3},
        "objective": {"metric": "final_val_loss", "direction": "minimize"},
    }
    out.update(overrides)
    return out


def drive(app) -> Any:
    optuna_glue._storages.clear()  # as a freshly started API process
    return drive_once(app.state.session_factory, app.state.settings, app.state.celery)


def jobs_of(app, study_id: str) -> list[tuple[StudyTrial, Job]]:
    with session_scope(app.state.session_factory) as session:
        stmt = (
            select(StudyTrial, Job)
            .join(Job, Job.id == StudyTrial.job_id)
            .where(StudyTrial.study_id == study_id)
            .order_by(StudyTrial.number)
        )
        rows = [(t, j) for t, j in session.execute(stmt).tuples()]
        session.expunge_all()
        return rows


def finish(app, job_id: str, *, status: str, summary: dict, points: list[tuple[int, float]]):
    with session_scope(app.state.session_factory) as session:
        session.add_all(
            MetricPoint(job_id=job_id, name="val_loss", step=s, epoch=float(s), value=v)
            for s, v in points
        )
        values = {"status": status, "summary": summary, "finished_at": utcnow()}
        session.execute(update(Job).where(Job.id == job_id).values(**values))


@pytest.fixture
def app(tmp_path):
    from api.app import create_app
    from tests.unit.api.conftest import make_settings

    return create_app(make_settings(tmp_path, study_poll_seconds=0))


def test_a_grid_study_runs_each_point_as_a_job_and_reports_the_best(client, app):
    created = client.post("/v1/studies", json=body(name="grid"))
    assert created.status_code == 202, created.text
    study_id = created.json()["id"]
    assert len(drive(app).created) == 3
    assert len(drive(app).created) == 0  # a second pass asks nothing more: idempotent
    rows = jobs_of(app, study_id)
    lrs = sorted(t.params["optimizer.base.lr"] for t, _ in rows)
    assert lrs == [0.05, 0.1, 0.2]
    for trial, job in rows:
        assert job.spec["optimizer"]["base"]["lr"] == trial.params["optimizer.base.lr"]
        assert job.status == "queued"
    losses = {0.05: 0.9, 0.1: 0.3, 0.2: 0.6}
    for trial, job in rows:
        loss = losses[trial.params["optimizer.base.lr"]]
        summary = {"final_val_loss": loss, "grad_evals": 20.0}
        finish(app, job.id, status="succeeded", summary=summary, points=[(1, loss)])
    drive(app)
    report = client.get(f"/v1/studies/{study_id}").json()
    assert report["status"] == "succeeded"
    assert report["best_value"] == 0.3 and report["best_params"] == {"optimizer.base.lr": 0.1}
    assert report["trials_by_state"]["complete"] == 3
    assert report["budget"]["grad_evals_used"] == 60.0
    assert report["history"][-1] == {"trials": 3, "grad_evals": 60.0, "trial": 2, "best_value": 0.3}
    history = client.get(f"/v1/studies/{study_id}/plots/history", params={"format": "svg"})
    assert history.status_code == 200 and 'id="line-best"' in history.text
    importance = client.get(f"/v1/studies/{study_id}/plots/importance", params={"format": "svg"})
    assert importance.status_code == 200 and 'id="bar-optimizer.base.lr"' in importance.text


def test_the_median_pruner_stops_a_worse_running_trial_which_ends_pruned(client, app):
    space = {"optimizer.base.lr": {"type": "categorical", "choices": [0.1, 0.2]}}
    pruner = {"name": "median", "n_startup_trials": 1}
    created = client.post(
        "/v1/studies", json=body(search_space=space, pruner=pruner, budget={"trials": 2})
    )
    study_id = created.json()["id"]
    drive(app)
    (_, first), (_, second) = jobs_of(app, study_id)
    finish(app, first.id, status="succeeded", summary={"final_val_loss": 0.4},
           points=[(1, 0.5), (2, 0.4)])  # fmt: skip
    with session_scope(app.state.session_factory) as session:
        session.execute(
            update(Job).where(Job.id == second.id).values(status="running", worker_id="w")
        )
        session.add(MetricPoint(job_id=second.id, name="val_loss", step=1, epoch=1.0, value=2.0))
    assert drive(app).pruned == [second.id]
    with session_scope(app.state.session_factory) as session:  # what the worker does next
        assert finish_job(session=session, job_id=second.id, worker_id="w", status="cancelled")
    drive(app)
    report = client.get(f"/v1/studies/{study_id}").json()
    assert report["trials_by_state"]["pruned"] == 1 and report["status"] == "succeeded"
    job = client.get(f"/v1/jobs/{second.id}").json()
    assert job["status"] == "pruned" and job["failure_reason"] == "pruned"
    assert "pruned at step 1" in job["error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"objective": {"metric": "final_test_loss"}}, "objective.metric"),
        ({"base": spec()}, "base.data.validation_fraction"),
        (
            {
                "base": {**BASE, "optimizer": {"name": "sgd"}},
                "search_space": {"optimizer.rho": {"type": "uniform", "low": 0.01, "high": 0.1}},
                "sampler": {"name": "tpe"},
            },
            "search_space.optimizer.rho",
        ),
        (
            {"search_space": {"optimizer.base.lr": {"type": "uniform", "low": 0.1, "high": 1}}},
            "search_space.optimizer.base.lr",
        ),
        ({"budget": {"parallel": 2}}, "budget"),
    ],
)
def test_a_study_that_cannot_run_is_refused_naming_the_field(client, change, field):
    response = client.post("/v1/studies", json=body(**change))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == field


def test_cancel_stops_the_study_and_its_queued_trials(client, app):
    study_id = client.post("/v1/studies", json=body()).json()["id"]
    drive(app)
    waiting = client.get(f"/v1/studies/{study_id}/plots/history")
    assert waiting.status_code == 409 and "no trial has completed" in waiting.json()["detail"]
    answer = client.post(f"/v1/studies/{study_id}/cancel").json()
    assert answer["cancelled"] == 3
    assert client.get(f"/v1/studies/{study_id}").json()["status"] == "cancelled"
    assert client.post(f"/v1/studies/{study_id}/cancel").status_code == 409
    listed = client.get("/v1/studies", params={"status": "cancelled"}).json()["items"]
    assert [s["id"] for s in listed] == [study_id]
