"""Property-based checks over the live app's OpenAPI schema (schemathesis).

Every operation is called with generated requests, valid and invalid, against
the in-process app on SQLite with a filesystem broker (both in a temporary
folder). No response may be a 5xx, and each must have a documented status and
match the schema documented for it (problem JSON for every error).
Once with auth off, once with auth on and a valid key of a team with data.
Both generate valid and invalid requests (out-of-range integers included) with
NUL bytes allowed in strings.

Schemathesis sends only what a schema can describe, so a second part walks the
same OpenAPI document with what it cannot: a NUL, a lone surrogate and integers
past 64 bits in every parameter; malformed, deeply nested, oversized and
form-encoded bodies to every operation that takes JSON; and hypothesis-drawn odd
values (any JSON, odd text) put at every path of a valid job and benchmark.
"""

from __future__ import annotations

import atexit
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

import migrations
from api.app import create_app
from tests.unit.api.conftest import make_settings, new_key, spec

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
# Valid and invalid requests (negative mode: out-of-range integers, wrong types, missing
# fields), with NUL bytes allowed in generated strings. (The coverage phase is left
# off: on the job spec's schema it spends minutes generating cases.)
CONFIG = SchemathesisConfig.from_dict({"generation": {"mode": "all", "allow-x00": True}})
open_api = schemathesis.openapi.from_asgi("/openapi.json", OPEN_APP, config=CONFIG)
auth_api = schemathesis.openapi.from_asgi("/openapi.json", AUTH_APP, config=CONFIG)

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


# --- what a schema cannot describe ----------------------------------------------------

# An app of its own, entered once: every request then runs on one event loop, as in a
# server (the session dependency keeps a loop-bound limiter in the app's state).
HOSTILE_APP = _app("hostile")
CLIENT = TestClient(HOSTILE_APP).__enter__()
atexit.register(CLIENT.__exit__, None, None, None)
ODD_TEXT = ["a\x00b", "\ud800", "x\udfffy", "😀", "", "ρ" * 300]
ODD_INTEGERS = [2**63, -(2**63) - 1, 10**30]
BAD_BODIES: list[tuple[bytes, str]] = [
    (b'{"model": ', "application/json"),
    (b"\xff\xfe{}", "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    (b'{"a": "' + b"x" * (1024 * 1024) + b'"}', "application/json"),
    (b'{"name": "\\u0000"}', "application/json"),
    (b'{"name": "\\udc00"}', "application/json"),
    (b"model=mlp&data=digits", "application/x-www-form-urlencoded"),
    (b"--b\r\n\r\n--b--\r\n", "multipart/form-data; boundary=b"),
]


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in HOSTILE_APP.openapi()["paths"].items()
        for method, operation in operations.items()
    ]


def _url(path: str, params: dict[str, str]) -> str:
    for name in re.findall(r"{(\w+)(?::path)?}", path):
        path = re.sub(rf"{{{name}(?::path)?}}", quote(params.get(name, "0" * 32)), path)
    return path


def _no_server_error(response: Any, what: object) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", what


def _sendable(value: str, ascii_only: bool) -> bool:
    """Whether a client can put `value` in a URL (UTF-8) or a header (ASCII).

    A lone surrogate has no UTF-8 form, so it reaches the API only as a JSON escape.
    """
    try:
        value.encode("ascii" if ascii_only else "utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _hostile_requests(operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for param in operation.get("parameters", []):
        schema = param.get("schema", {})
        values: list[object] = [*ODD_TEXT]
        if "integer" in json.dumps(schema):
            values += ODD_INTEGERS
        for value in map(str, values):
            where = {"path": "path", "query": "params", "header": "headers"}[param["in"]]
            if not _sendable(value, ascii_only=where == "headers"):
                continue
            yield {where: {param["name"]: value}}
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        for body, content_type in BAD_BODIES:
            yield {"content": body, "headers": {"Content-Type": content_type}}


@pytest.mark.parametrize(("method", "path", "operation"), _operations())
def test_odd_parameters_and_bodies_are_4xx_never_5xx(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    for request in _hostile_requests(operation):
        url = _url(path, request.pop("path", {}))
        response = CLIENT.request(method, url, **request)
        _no_server_error(response, (method, url, request))


def _json(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )


ODD_VALUES = _json(st.text(max_size=8) | st.sampled_from(ODD_TEXT))
JOB = spec(measure={"sharpness": ["hessian_trace"]}, tags=["t"], name="n")
BENCHMARK = {
    "name": "b",
    "tags": ["t"],
    "base": JOB,
    "axes": {"optimizer.rho": [0.05]},
    "seeds": [0],
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value: keys of objects, indices of lists."""
    out = [prefix] if prefix else []
    if isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            out += _paths(item, (*prefix, key))
    return out


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = value.copy()
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@pytest.mark.parametrize(("route", "valid"), [("/v1/jobs", JOB), ("/v1/benchmarks", BENCHMARK)])
@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(data=st.data())
def test_an_odd_value_at_any_path_of_a_valid_body_is_4xx_never_5xx(
    route: str, valid: dict[str, Any], data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(_paths(valid)), label="path")
    body = _replaced(valid, path, data.draw(ODD_VALUES, label="value"))
    raw = json.dumps(body)  # lone surrogates travel as \ud800 escapes, as JSON allows
    response = CLIENT.post(route, content=raw, headers={"Content-Type": "application/json"})
    _no_server_error(response, (path, body))
