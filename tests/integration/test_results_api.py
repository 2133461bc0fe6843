"""GET /v1/results on PostgreSQL and SQLite: filters, group-by aggregates in SQL, exports."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from scipy import stats

import migrations
from api.app import create_app
from api.services.comparison import interval, metric_bounds
from flatlab.settings import Settings
from sam_core.spec import JobSpec
from store.db import make_engine, make_session_factory, session_scope
from store.jobs import create_job
from store.keys import get_or_create_team
from tests.pg import temporary_database
from tests.tolerance import float_tolerance

pytestmark = pytest.mark.integration

OPTIMIZERS = [("sgd", None), ("sam", 0.05), ("sam", 0.1)]


def _spec(name: str, rho: float | None, lr: float, seed: int, tags: list[str]) -> JobSpec:
    optimizer: dict = {"name": name, "base": {"lr": lr}}
    if rho is not None:
        optimizer["rho"] = rho
    return JobSpec.model_validate(
        {
            "tags": tags,
            "model": {"name": "mlp", "hidden": [16]},
            "data": {"name": "digits"},
            "optimizer": optimizer,
            "training": {"epochs": 1, "seed": seed},
        }
    )


def _fill(url: str) -> None:
    """36 jobs: 3 optimizer configs × 2 learning rates × 3 seeds × 2 statuses."""
    factory = make_session_factory(make_engine(url))
    with session_scope(factory) as session:
        team = get_or_create_team(session=session, name="default").id
        other = get_or_create_team(session=session, name="other").id
        rng = np.random.default_rng(0)
        for name, rho in OPTIMIZERS:
            for lr in (0.1, 0.05):
                for seed in range(3):
                    for status in ("succeeded", "failed"):
                        tags = ["grid", name] + (["lr-high"] if lr == 0.1 else [])
                        job = create_job(
                            session=session,
                            team_id=team,
                            spec=_spec(name, rho, lr, seed, tags),
                            max_attempts=3,
                        )
                        job.status = status
                        job.summary = {
                            "final_test_acc": float(rng.uniform(0.8, 0.95)),
                            "gen_gap_acc": float(rng.uniform(0.0, 0.1)),
                        }
        create_job(
            session=session, team_id=other, spec=_spec("sgd", None, 0.1, 0, []), max_attempts=3
        )


@pytest.fixture(params=["postgresql", "sqlite"], scope="module")
def client(request, tmp_path_factory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("home")
    if request.param == "postgresql":
        with temporary_database() as url:
            yield from _client(url, home)
    else:
        yield from _client(f"sqlite:///{home / 'r.db'}", home)


def _client(url: str, home: Path) -> Iterator[TestClient]:
    migrations.upgrade(url)
    _fill(url)
    settings = Settings(database_url=url, home=home, auth_required=False)
    with TestClient(create_app(settings)) as client:
        yield client


def rows(client: TestClient, *filters: str, **params) -> list[dict]:
    response = client.get("/v1/results", params={"filter": list(filters), "limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_rows_are_the_teams_jobs_only(client):
    assert len(rows(client)) == 36


def test_numeric_comparison_on_a_spec_field(client):
    got = rows(client, "optimizer.rho:gt:0.06", fields="optimizer.rho,optimizer.name")
    assert len(got) == 12
    assert {r["fields"]["optimizer.rho"] for r in got} == {0.1}


def test_in_and_or_and_and(client):
    assert len(rows(client, "optimizer.name:in:sgd,sam")) == 36
    either = rows(client, "optimizer.rho:eq:0.05|optimizer.name:eq:sgd", "status:eq:succeeded")
    assert len(either) == 12
    assert {r["status"] for r in either} == {"succeeded"}


def test_filters_on_metrics_tags_seeds_and_time(client):
    everything = rows(client)
    good = [r for r in everything if r["summary"]["final_test_acc"] >= 0.9]
    assert len(rows(client, "summary.final_test_acc:ge:0.9")) == len(good)
    assert len(rows(client, "tag:eq:lr-high")) == 18
    assert len(rows(client, "tag:ne:lr-high", "seed:in:0,1")) == 12
    assert len(rows(client, "created:ge:2000-01-01T00:00:00+00:00")) == 36
    assert len(rows(client, "optimizer.base.lr:lt:0.07")) == 18


def test_group_by_aggregates_equal_python_over_the_rows(client):
    response = client.get(
        "/v1/results",
        params={
            "group_by": "optimizer.name,optimizer.rho",
            "metrics": "final_test_acc,gen_gap_acc",
            "filter": "status:eq:succeeded",
        },
    )
    assert response.status_code == 200, response.text
    groups = response.json()["groups"]
    items = rows(client, "status:eq:succeeded", fields="optimizer.name,optimizer.rho")
    assert len(groups) == 3
    for group in groups:
        key = group["key"]
        mine = [
            r["summary"]
            for r in items
            if r["fields"]["optimizer.name"] == key["optimizer.name"]
            and r["fields"]["optimizer.rho"] == key["optimizer.rho"]
        ]
        assert group["jobs"] == len(mine) == 6
        for metric in ("final_test_acc", "gen_gap_acc"):
            values = np.array([s[metric] for s in mine])
            got = group["metrics"][metric]
            half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(6)
            assert got["n"] == 6
            # Sums of 6 float64 values in the database; the std subtracts the mean first
            # (condition |x|/std). Accuracies are bounded: their interval is on the logit scale.
            condition = max(1.0, float(np.abs(values).max() / max(values.std(ddof=1), 1e-300)))
            tol = float_tolerance(ops=6, condition=condition)
            low, high = interval(6, values.mean(), values.std(ddof=1), metric_bounds(metric))
            assert got["mean"] == pytest.approx(values.mean(), rel=float_tolerance(ops=6))
            assert got["std"] == pytest.approx(values.std(ddof=1), rel=tol)
            assert (got["min"], got["max"]) == (values.min(), values.max())  # no arithmetic
            assert got["ci_low"] == pytest.approx(low, rel=tol)
            assert got["ci_high"] == pytest.approx(high, rel=tol)
            if metric_bounds(metric) is None:
                assert (low, high) == pytest.approx(
                    (values.mean() - half, values.mean() + half), rel=tol
                )


def test_pages_follow_the_cursor_without_repeats(client):
    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/results", params=params).json()
        seen += [r["id"] for r in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 36


@pytest.mark.parametrize("group_by", [None, "optimizer.name,data.batch_size"])
def test_csv_and_parquet_parse_back_to_the_same_table(client, group_by):
    params = {"limit": 1000, "fields": "optimizer.name,model.hidden"}
    if group_by:
        params = {"group_by": group_by}
    csv_response = client.get("/v1/results", params={**params, "format": "csv"})
    parquet_response = client.get("/v1/results", params={**params, "format": "parquet"})
    assert csv_response.headers["content-type"] == "text/csv; charset=utf-8"
    assert parquet_response.headers["content-type"] == "application/vnd.apache.parquet"

    from_csv = list(csv.DictReader(io.StringIO(csv_response.text)))
    from_parquet = pq.read_table(io.BytesIO(parquet_response.content)).to_pylist()
    assert len(from_csv) == len(from_parquet) > 0
    assert list(from_csv[0]) == list(from_parquet[0])
    for a, b in zip(from_csv, from_parquet, strict=True):
        for column, value in b.items():
            if isinstance(value, float):
                assert float(a[column]) == value  # CSV writes repr(float): it reads back exactly
            else:
                assert a[column] == ("" if value is None else str(value))


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"filter": "optimizer.rho:gt"}, "optimizer.rho:gt"),
        ({"filter": "optimizer.rho:approx:1"}, "approx"),
        ({"filter": "optimiser.rho:gt:1"}, "optimiser.rho"),
        ({"filter": "optimizer.name:gt:sam"}, "needs a number"),
        ({"filter": "created:ge:yesterday"}, "yesterday"),
        ({"group_by": "weights"}, "weights"),
    ],
)
def test_bad_query_is_a_422_naming_it(client, params, named):
    response = client.get("/v1/results", params=params)
    assert response.status_code == 422
    assert named in response.json()["detail"]
