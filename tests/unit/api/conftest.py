"""An app on a temporary SQLite database and filesystem broker, one per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from flatlab.settings import Settings
from store.db import session_scope
from store.keys import create_api_key, create_team


def make_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"home": home, "database_url": None, "broker_url": None}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def spec(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": {"name": "mlp", "hidden": [16]},
        "data": {"name": "digits"},
        "optimizer": {"name": "sam", "rho": 0.05},
        "training": {"epochs": 1, "seed": 0},
    }
    body.update(overrides)
    return body


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(make_settings(tmp_path))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth_app(tmp_path: Path) -> FastAPI:
    return create_app(make_settings(tmp_path, auth_required=True))


@pytest.fixture
def auth_client(auth_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(auth_app) as c:
        yield c


def new_key(app: FastAPI, team: str, read_only: bool = False) -> str:
    """A bearer key of a (new) team; the app must have started (its tables exist)."""
    with session_scope(app.state.session_factory) as session:
        from store.keys import get_team_by_name

        found = get_team_by_name(session=session, name=team)
        team_id = found.id if found else create_team(session=session, name=team).id
        return create_api_key(session=session, team_id=team_id, read_only=read_only).key
