"""What the runner tests share: a tiny spec, migrated SQLite settings, a session factory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import migrations
from flatlab.settings import Settings
from sam_core.spec import JobSpec
from store.db import make_engine, make_session_factory, session_scope
from store.jobs import create_job

TINY: dict[str, Any] = {
    "model": {"name": "one_hidden", "width": 4},
    "data": {"name": "teacher_student", "n_train": 32, "n_test": 32, "dim": 3, "batch_size": 16},
    "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.05}},
    "training": {"epochs": 2, "seed": 0, "device": "cpu", "log_every_steps": 1},
    "measure": {"every_epochs": 1, "num_examples": 32},
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home", heartbeat_seconds=0.05, lease_seconds=30)
    migrations.upgrade(settings.db_url)
    return settings


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.db_url)
    yield make_session_factory(engine)
    engine.dispose()


def submit(factory: sessionmaker[Session], spec: dict[str, Any]) -> str:
    """A queued job of team "t" with `spec`; its id."""
    with session_scope(factory) as session:
        job = create_job(
            session=session, team_id="t", spec=JobSpec.model_validate(spec), max_attempts=3
        )
        return job.id
