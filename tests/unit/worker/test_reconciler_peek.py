"""The reconciler reads which jobs each broker message carries: one, or an ensemble's many."""

from __future__ import annotations

from flatlab.broker import enqueue_ensemble, enqueue_job, make_celery
from flatlab.settings import Settings
from worker.reconciler import broker_job_ids


def test_every_job_of_an_ensemble_message_counts_as_sent(tmp_path):
    app = make_celery(Settings(home=tmp_path, database_url=None, broker_url="filesystem://"))
    ensemble = [f"job-{i}" for i in range(32)]
    enqueue_ensemble(ensemble, "cpu", app=app)
    enqueue_job("solo", "cpu", app=app)
    enqueue_job("on-gpu", "gpu", app=app)

    assert broker_job_ids(app, "cpu") == {*ensemble, "solo"}
    assert broker_job_ids(app, "gpu") == {"on-gpu"}


def test_a_broker_it_cannot_read_says_so(tmp_path):
    app = make_celery(Settings(home=tmp_path, broker_url="memory://"))
    assert broker_job_ids(app, "cpu") is None
