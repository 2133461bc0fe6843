"""A worker handed a job whose team is at its cap leaves it queued and sends it again later."""

from __future__ import annotations

from pathlib import Path

import migrations
from flatlab.settings import Settings
from sam_core.spec import JobSpec
from store.db import make_engine, make_session_factory, session_scope
from store.jobs import create_job
from store.leases import claim_job
from store.models import Job
from tests.unit.worker.conftest import TINY
from worker import runner


def test_job_over_the_team_cap_stays_queued_and_is_sent_again(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", max_running_jobs_per_team=1, _env_file=None)
    migrations.upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        ids = [
            create_job(
                session=session, team_id="t", spec=JobSpec.model_validate(TINY), max_attempts=3
            ).id
            for _ in range(2)
        ]
        claim_job(session=session, job_id=ids[0], worker_id="other", lease_seconds=30)

    assert runner.run_job(ids[1], settings) is None

    with session_scope(factory) as session:
        job = session.get(Job, ids[1])
        assert (job.status, job.attempts, job.failure_reason) == ("queued", 0, None)
        assert job.enqueued_at is not None  # sent again, so the reconciler waits
    assert list((settings.broker_dir / "queue").iterdir())  # the delayed message
    engine.dispose()
