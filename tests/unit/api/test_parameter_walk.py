"""Every documented query, path and header parameter, sent a bad value, answers a 4xx problem.

The parameters come from the app's own OpenAPI document, so a parameter added
later is walked too. Each gets the bad values its schema allows a client to
send: integers past either bound and past 64 bits, words that are no member of
an enum, a typo of a name for parameters that name something, and a NUL
character in any text. The other parameters of the request are valid (real
ids of a finished job, a benchmark, an artifact), so the 4xx is for the
parameter under test, and a query or header parameter is named in the answer.
Every integer parameter must also declare its bounds, and they must fit the
64-bit columns they reach. And every list an operation returns is paginated
(`next_cursor`, with `cursor` and `limit`) or one of the lists known to be
returned whole.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from store.artifacts import add_artifact
from store.db import session_scope
from store.models import Job
from tests.unit.api.conftest import make_settings, spec

INT64 = 2**63 - 1
# A typo for each string parameter that names a field, metric, status or catalog entry.
TYPOS: dict[str, list[str]] = {
    "names": ["test_accuracy"],
    "group_by": ["optimizer.rhoo", "optimiser"],
    "metrics": ["final_tset_acc"],
    "fields": ["data.batchsize"],
    "filter": ["status:eq:succeded", "seed:eq:2147483648", "optimizer.rhoo:gt:0", "seed:gt:x"],
    "metric": ["final_tset_acc"],
    "optimizer": ["samm"],
    "model": ["resnet_18"],
    "dataset": ["cifar"],
    "cursor": ["not-a-cursor"],
}
# String parameters that are free text or ids: only a NUL makes them bad.
FREE_TEXT = {"tag", "name", "benchmark_id", "spec_hash", "Idempotency-Key"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app: FastAPI = create_app(make_settings(tmp_path_factory.mktemp("walk")))
    with TestClient(app) as client:
        job_id = client.post("/v1/jobs", json=spec()).json()["id"]
        bench = {"base": spec(), "axes": {"optimizer.rho": [0.05, 0.1]}, "seeds": [0]}
        benchmark_id = client.post("/v1/benchmarks", json=bench).json()["id"]
        root = app.state.settings.artifacts_dir
        (root / job_id).mkdir(parents=True)
        (root / job_id / "final.pt").write_bytes(b"w")
        with session_scope(app.state.session_factory) as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.status, job.summary = "succeeded", {"final_test_acc": 0.9}
            add_artifact(
                session=session, job_id=job_id, team_id=job.team_id, name="final.pt",
                kind="weights", path=f"{job_id}/final.pt",
            )  # fmt: skip
        ids = {"job_id": job_id, "benchmark_id": benchmark_id, "name": "final.pt"}
        ids["dataset_id"] = "0" * 32
        yield client, ids


def _operations(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            yield path, method.upper(), operation


def _scalar(schema: dict[str, Any]) -> dict[str, Any]:
    """The non-null member of an optional parameter's schema; an array's item schema."""
    for member in schema.get("anyOf", []):
        if member.get("type") != "null":
            return _scalar(member)
    return schema


def bad_values(param: dict[str, Any]) -> list[str]:
    schema = _scalar(param["schema"])
    name = param["name"]
    if param["in"] == "path":
        return ["no-such-id", "%00"]  # an id or name that does not exist; a NUL
    kind = schema.get("type")
    if kind == "integer":
        assert "maximum" in schema and schema["maximum"] <= INT64, f"{name} has no upper bound"
        assert "minimum" in schema and schema["minimum"] >= -INT64 - 1, f"{name}: no lower bound"
        low, high = schema["minimum"], schema["maximum"]
        return [str(low - 1), str(high + 1), str(2**63), str(-(2**63) - 1), "1.5", "x"]
    if kind == "array":
        schema = _scalar(schema["items"])
    if "enum" in schema:
        return ["no-such-choice", "\x00"]
    if "maxLength" in schema:
        return ["x" * (schema["maxLength"] + 1), "\x00"]
    assert name in TYPOS or name in FREE_TEXT, f"classify string parameter {name!r}"
    return [*TYPOS.get(name, []), "\x00"]


def _cases(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    for path, method, operation in _operations(app):
        for param in operation.get("parameters", []):
            for value in bad_values(param):
                yield path, method, param, value


def _request(
    client: TestClient,
    ids: dict[str, str],
    path: str,
    method: str,
    param: dict[str, Any],
    value: str,
) -> Any:
    where, name = param["in"], param["name"]
    url = path
    kind = "comparison" if path.startswith("/v1/benchmarks") else "curves"  # plots' kinds
    for key, real in {**ids, "kind": kind}.items():
        url = url.replace("{" + key + "}", value if where == "path" and key == name else real)
    query = {name: value} if where == "query" else {}
    headers = {name: value} if where == "header" else {}
    body = spec() if (method, path) == ("POST", "/v1/jobs") else None
    if "\x00" in value and where == "header":
        return None  # HTTP itself forbids NUL in a header: no client can send it
    return client.request(method, url, params=query, headers=headers, json=body)


def test_every_parameter_with_a_bad_value_is_a_4xx_naming_it(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, ids = world
    app: FastAPI = client.app  # type: ignore[assignment]
    cases = list(_cases(app))
    walked = {(c[0], c[2]["name"]) for c in cases}
    assert ("/v1/jobs/{job_id}/metrics", "since_step") in walked  # the walk sees the examples
    assert ("/v1/results", "filter") in walked and (
        "/v1/jobs/{job_id}/events",
        "Last-Event-ID",
    ) in walked
    failures = []
    for path, method, param, value in cases:
        r = _request(client, ids, path, method, param, value)
        if r is None:
            continue
        named = param["in"] == "path" or param["name"] in r.text
        problem = r.headers.get("content-type") == "application/problem+json"
        if not (400 <= r.status_code < 500 and named and problem):
            failures.append(
                f"{method} {path} {param['name']}={value!r}: {r.status_code} {r.text[:200]}"
            )
    assert not failures, "\n".join(failures)


# Lists returned whole, and why they are bounded.
COMPLETE = {
    "/v1/jobs/{job_id}/artifacts": "a job's files: a checkpoint and what its measures saved",
    "/v1/optimizers": "the catalog",
    "/v1/models": "the catalog",
    "/v1/datasets": "the catalog",
    "/v1/measures": "the catalog",
    "/v1/presets": "the presets shipped with flatlab",
    "/v1/benchmarks/{benchmark_id}": "job_list: at most FLATLAB_MAX_BENCHMARK_JOBS",
    "/v1/studies/{study_id}": "trials, history: every trial, at most budget.trials or 10 000",
}


def _has_list(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """Whether a body holds a list of records: at its top, or as a mapping of lists."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    for child in schema.get("properties", {}).values():
        extra = child.get("additionalProperties")
        for node in (child, extra if isinstance(extra, dict) else {}):
            items = node.get("items", {}) if node.get("type") == "array" else {}
            if "$ref" in items or items.get("type") == "object":
                return True
    return False


def test_every_list_is_paginated_or_known_complete() -> None:
    app = create_app(make_settings(Path(tempfile.mkdtemp(prefix="flatlab-walk-"))))
    schema = app.openapi()
    components = schema["components"]["schemas"]
    for path, method, operation in _operations(app):
        ok = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if method != "GET" or ok is None or not _has_list(ok["schema"], components):
            continue
        body = ok["schema"]
        body = components[body["$ref"].rsplit("/", 1)[-1]] if "$ref" in body else body
        params = {p["name"] for p in operation.get("parameters", [])}
        if "next_cursor" in body.get("properties", {}):
            assert {"cursor", "limit"} <= params, f"{path} pages without cursor and limit"
        else:
            assert path in COMPLETE, f"GET {path} returns a list with no next_cursor"
