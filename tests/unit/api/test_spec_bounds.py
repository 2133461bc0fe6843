"""Every size a spec can ask for is bounded: too big is a 422 naming the field; nothing is a 500."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.api.conftest import spec


def post_job(client, body: dict[str, Any]):
    """POST as Python's JSON writes it: NaN and Infinity included, as a careless client sends."""
    headers = {"Content-Type": "application/json"}
    return client.post("/v1/jobs", content=json.dumps(body), headers=headers)


TOO_BIG: list[tuple[dict[str, Any], str]] = [
    ({"model": {"name": "mlp", "hidden": [16, 70_000]}}, "model.hidden.1"),
    ({"model": {"name": "mlp", "hidden": [0]}}, "model.hidden.0"),
    ({"model": {"name": "mlp", "hidden": [32_768, 32_768]}}, "model"),
    ({"model": {"name": "mlp", "hidden": [8] * 17}}, "model.hidden"),
    ({"model": {"name": "cnn", "channels": [8, 5000]}}, "model.channels.1"),
    ({"model": {"name": "one_hidden", "width": 10**6}}, "model.width"),
    ({"training": {"epochs": 10_001}}, "training.epochs"),
    ({"training": {"max_steps": 10**9}}, "training.max_steps"),
    ({"data": {"name": "digits", "batch_size": 10**6}}, "data.batch_size"),
    ({"data": {"name": "teacher_student", "n_train": 3_000_000}}, "data.n_train"),
    ({"data": {"name": "teacher_student", "n_train": 1_000_000, "dim": 1000}}, "data"),
    ({"data": {"name": "sparse_parity", "n_train": 2_000_000, "n_bits": 1000}}, "data"),
    ({"data": {"name": "teacher_student", "data_seed": 2**40}}, "data.data_seed"),
    ({"measure": {"num_examples": 10**6}}, "measure.num_examples"),
    ({"measure": {"sharpness": [{"name": "hessian_trace", "probes": 10**5}]}}, None),
    ({"measure": {"sharpness": ["hessian_trace"] * 33}}, "measure.sharpness"),
    ({"optimizer": {"name": "sgd", "schedule": {"min_lr": math.inf}}}, "optimizer.schedule.min_lr"),
    ({"optimizer": {"name": "sgd", "base": {"lr": math.nan}}}, "optimizer.base.lr"),
    ({"optimizer": {"name": "sgd", "base": {"betas": [0.9, 2.0]}}}, "optimizer.base.betas.1"),
    ({"limits": {"timeout_s": 10**9}}, "limits.timeout_s"),
]


@pytest.mark.parametrize(("override", "loc"), TOO_BIG)
def test_a_size_past_its_bound_is_422_naming_the_field(client, override, loc) -> None:
    response = post_job(client, spec(**override))

    assert response.status_code == 422, response.text
    body = response.json()
    locs = [e["loc"] for e in body["errors"]]
    if loc is None:  # the path of a list item: asserted by its start
        section = next(iter(override))
        assert all(str(x).startswith(section) for x in locs), locs
    else:
        assert loc in locs, locs


def test_a_grid_past_max_benchmark_jobs_is_422(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.unit.api.conftest import make_settings

    app = create_app(make_settings(tmp_path, max_benchmark_jobs=10))
    body = {
        "base": spec(),
        "axes": {"optimizer.base.lr": [0.01, 0.02, 0.03, 0.04]},
        "seeds": [0, 1, 2],
    }
    with TestClient(app) as client:
        response = client.post("/v1/benchmarks", json=body)
    assert response.status_code == 422
    assert "more than the limit of 10 (max_benchmark_jobs)" in response.json()["detail"]


SECTIONS = ("model", "data", "optimizer", "training", "measure", "limits")
FIELDS = (
    "hidden", "channels", "width", "epochs", "max_steps", "batch_size", "n_train", "n_test", "dim",
    "num_examples", "probes", "sharpness", "rho", "lr", "seed", "timeout_s", "every_epochs", "name",
)  # fmt: skip
VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=20),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)


@given(st.lists(st.tuples(st.sampled_from(SECTIONS), st.sampled_from(FIELDS), VALUES), max_size=4))
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_specs_are_accepted_or_422_never_a_server_error(client, edits) -> None:
    body = spec()
    for section, field, value in edits:
        block = body.setdefault(section, {})
        if isinstance(block, dict):
            block[field] = value

    response = post_job(client, body)

    assert response.status_code in (202, 422), response.text
    if response.status_code == 422:
        assert all(e["loc"] for e in response.json()["errors"])
