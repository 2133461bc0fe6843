"""The client on the real API app in this process (SQLite, filesystem broker, no worker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from flatlab.client import Client
from tests.unit.api.conftest import make_settings


@pytest.fixture
def fl(tmp_path: Path) -> Iterator[Client]:
    with TestClient(create_app(make_settings(tmp_path))) as http:
        yield Client("http://testserver", http=http, backoff=0.0)
