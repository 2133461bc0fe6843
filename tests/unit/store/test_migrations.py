"""The migrations build exactly the schema of store.models, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import migrations
from store.db import make_engine
from store.models import Base
from tests.pg import temporary_database


def _differences(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return list(diff)


def test_migrated_sqlite_schema_equals_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    assert _differences(url) == []


def test_migrated_postgresql_schema_equals_models() -> None:
    with temporary_database() as url:
        migrations.upgrade(url)
        assert _differences(url) == []


def test_migrations_keep_every_named_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    names = {ix["name"] for ix in inspect(engine).get_indexes("jobs")}
    engine.dispose()
    assert {"ix_jobs_team_created", "ix_jobs_team_status", "ix_jobs_status_lease"} <= names


def test_downgrade_removes_every_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    migrations.downgrade(url, "base")
    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert tables == set()
