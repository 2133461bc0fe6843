"""A bad spec is refused before it is queued, with the field at fault named as the user wrote it."""

from __future__ import annotations

import pytest

from tests.integration.specs import TINY, spec


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"optimizer": {"name": "adamax_sam"}}, "optimizer"),
        ({"optimizer.rho": -0.1}, "optimizer.rho"),
        ({"training.epochs": "many"}, "training.epochs"),
        ({"data.batch_size": 0}, "data.batch_size"),
    ],
    ids=["unknown-optimizer", "negative-rho", "epochs-not-a-number", "zero-batch"],
)
def test_bad_spec_is_refused_naming_the_field(client, override, field):
    response = client.post("/v1/jobs", json=spec(TINY, **override))

    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["status"] == 422
    locs = [error["loc"] for error in problem["errors"]]
    assert any(loc == field or loc.startswith(field + ".") for loc in locs), locs
    listed = client.get("/v1/jobs", params={"tag": "integration", "status": "queued"}).json()
    assert all(job["spec"].get("optimizer", {}).get("rho", 0) >= 0 for job in listed["items"])
