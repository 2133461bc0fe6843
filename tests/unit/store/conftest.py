"""A migrated, empty database per test: SQLite in tmp_path, or PostgreSQL.

PostgreSQL tests share one throwaway database per session (created, migrated,
dropped at the end) and start from emptied tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

import migrations
from store.db import make_engine, make_session_factory
from store.models import Base
from tests.pg import temporary_database


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with temporary_database() as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        yield from _sqlite(tmp_path)
        return
    yield request.getfixturevalue("pg_factory")


@pytest.fixture
def pg_factory(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):  # quicker than TRUNCATE when small
            conn.execute(table.delete())
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from _sqlite(tmp_path)


def _sqlite(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    # the models' own DDL: quicker than migrating, and test_migrations proves them equal
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()
