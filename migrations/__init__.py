"""Alembic migrations for PostgreSQL and SQLite, shipped inside the package.

`upgrade(database_url)` brings a database to the newest revision; `flatlab db
upgrade` calls it. The Alembic configuration is built here, not read from an
ini file, so an installed flatlab finds its scripts wherever it lives.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    # configparser interpolation: a literal % in a password must be doubled
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision` (the newest by default)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
