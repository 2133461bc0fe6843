"""Query parameters that name something are checked: a typo is a 422 with the closest names."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from store.db import session_scope
from store.models import Job
from tests.unit.api.conftest import spec


def _finished(client: TestClient, app: FastAPI, summary: dict[str, float]) -> str:
    job_id: str = client.post("/v1/jobs", json=spec()).json()["id"]
    with session_scope(app.state.session_factory) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.summary = "succeeded", summary
    return job_id


def _problem(r: Any, loc: str) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    (error,) = r.json()["errors"]
    assert error["loc"] == loc
    return dict(error)


@pytest.mark.parametrize(
    ("params", "loc", "closest"),
    [
        ({"group_by": "optimizer.rhoo"}, "group_by", "optimizer.rho"),
        ({"metrics": "final_tset_acc"}, "metrics", "final_test_acc"),
        ({"metrics": "test_acc"}, "metrics", "final_test_acc"),
        ({"filter": "status:eq:succeded"}, "filter", "succeeded"),
        ({"filter": "optimizer:in:sam,adamw_sam"}, "filter", None),
        ({"filter": "optimizer.rhoo:gt:0.1"}, "filter", "optimizer.rho"),
        ({"filter": "summary.final_tset_acc:gt:0.5"}, "filter", "final_test_acc"),
        ({"fields": "data.batchsize"}, "fields", "data.batch_size"),
        ({"group_by": "optimiser"}, "group_by", "optimizer"),
    ],
)
def test_results_typos_are_422_naming_the_parameter_and_closest_names(
    client: TestClient, app: FastAPI, params: dict[str, str], loc: str, closest: str | None
) -> None:
    _finished(client, app, {"final_test_acc": 0.9})
    error = _problem(client.get("/v1/results", params=params), loc)
    if closest is not None:
        assert closest in error["suggestions"], error


def test_names_that_exist_are_accepted(client: TestClient, app: FastAPI) -> None:
    _finished(client, app, {"final_test_acc": 0.9, "my_custom_probe": 2.0})
    ok = [
        {"group_by": "optimizer.rho", "metrics": "final_test_acc,my_custom_probe"},
        {"group_by": "model.hidden.0,optimizer.base.lr"},
        {"filter": "status:in:succeeded,failed", "fields": "optimizer.rho,summary.steps"},
        {"filter": "summary.hessian_trace_std:gt:0"},  # a measure's extras, none stored yet
        {"group_by": "optimizer.eta"},  # ASAM's η: a field of some rule, null for this one
    ]
    for params in ok:
        assert client.get("/v1/results", params=params).status_code == 200, params


@pytest.mark.parametrize("value", ["2147483648", "-1", "1.5", "1e3", "99999999999999999999"])
def test_seed_filter_past_the_columns_range_is_422(client: TestClient, value: str) -> None:
    error = _problem(client.get("/v1/results", params={"filter": f"seed:eq:{value}"}), "filter")
    assert "2^31 - 1" in error["msg"]


def test_seed_filter_at_its_bounds_and_ordered(client: TestClient, app: FastAPI) -> None:
    job_id = _finished(client, app, {"final_test_acc": 0.9})
    for query, found in (
        ("seed:eq:2147483647", []),
        ("seed:ge:0", [job_id]),
        ("seed:lt:1", [job_id]),
    ):
        r = client.get("/v1/results", params={"filter": query})
        assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == found, query


def test_non_finite_number_in_a_filter_is_422(client: TestClient) -> None:
    _problem(client.get("/v1/results", params={"filter": "optimizer.rho:gt:1e999"}), "filter")


def test_job_list_names_are_checked(client: TestClient) -> None:
    error = _problem(client.get("/v1/jobs", params={"optimizer": "samm"}), "optimizer")
    assert "sam" in error["suggestions"]
    _problem(client.get("/v1/jobs", params={"dataset": "cifar"}), "dataset")
    assert client.get("/v1/jobs", params={"optimizer": "asam"}).status_code == 200


def test_benchmark_rank_metric_is_checked(client: TestClient) -> None:
    body = {"base": spec(), "axes": {"optimizer.rho": [0.05, 0.1]}, "seeds": [0]}
    bench_id = client.post("/v1/benchmarks", json=body).json()["id"]
    r = client.get(f"/v1/benchmarks/{bench_id}", params={"metric": "final_tset_acc"})
    assert "final_test_acc" in _problem(r, "metric")["suggestions"]


def test_nul_in_a_query_or_path_parameter_is_422(client: TestClient) -> None:
    _problem(client.get("/v1/jobs", params={"tag": "a\x00b"}), "tag")
    _problem(client.get("/v1/jobs/ab%00cd"), "job_id")
