"""Property-based checks over the live app's OpenAPI schema (schemathesis).

Every operation is called with generated requests, valid and invalid, against
the in-process app on SQLite with a filesystem broker (both in a temporary
folder). No response may be a 5xx, and each must have a documented status and
match the schema documented for it (problem JSON for every error).
Once with auth off, once with auth on and a valid key of a team with data.
"""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

import migrations
from api.app import create_app
from tests.unit.api.conftest import make_settings, new_key

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES = 8  # per operation and run: both runs together take about 40 s


# schemathesis parametrizes at collection time, so the apps are built at import,
# each in a temporary folder of its own removed at exit.
_HOME = tempfile.TemporaryDirectory(prefix="flatlab-schemathesis-")
atexit.register(_HOME.cleanup)


def _app(name: str, **overrides: object) -> FastAPI:
    app_settings = make_settings(Path(_HOME.name) / name, **overrides)
    migrations.upgrade(app_settings.db_url)
    return create_app(app_settings)


OPEN_APP = _app("open")
AUTH_APP = _app("auth", auth_required=True)
KEY = new_key(AUTH_APP, "schemathesis")
open_api = schemathesis.openapi.from_asgi("/openapi.json", OPEN_APP)
auth_api = schemathesis.openapi.from_asgi("/openapi.json", AUTH_APP)

RUN = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@open_api.parametrize()
@RUN
def test_api_conforms_to_its_schema_with_auth_off(case) -> None:
    case.call_and_validate(checks=CHECKS)


@auth_api.parametrize()
@RUN
def test_api_conforms_to_its_schema_with_a_valid_key(case) -> None:
    case.call_and_validate(checks=CHECKS, headers={"Authorization": f"Bearer {KEY}"})
