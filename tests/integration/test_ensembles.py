"""A benchmark whose jobs differ only in seed and ρ trains as one seed ensemble on a worker,
and each job's results equal those of the same spec run alone."""

from __future__ import annotations

import pytest

from tests.integration.specs import TINY, spec
from tests.integration.test_benchmarks_api import wait_for_benchmark
from tests.tolerance import ensemble_tolerance

pytestmark = pytest.mark.integration

BASE = spec(TINY, **{"name": "it-ensemble", "training.epochs": 2})
# 2 epochs of 4 steps; sums over at most 16 terms (the batch).
TOLERANCE = ensemble_tolerance(steps=8, width=16)
BODY = {
    "name": "it-ensemble",
    "base": BASE,
    "axes": {"optimizer.rho": [0.02, 0.1]},
    "seeds": [3, 4],
}


def test_benchmark_jobs_train_as_one_ensemble_and_equal_their_solo_runs(client, wait_for):
    created = client.post("/v1/benchmarks", json=BODY)
    assert created.status_code == 202, created.text
    report = wait_for_benchmark(client, created.json()["id"])
    assert report["progress"]["by_status"]["succeeded"] == 4

    for member in report["job_list"]:
        job = client.get(f"/v1/jobs/{member['job_id']}").raise_for_status().json()
        ensemble = job["reproducibility"]["ensemble"]
        assert ensemble["size"] == 4 and member["job_id"] in ensemble["job_ids"]

        rho = 0.02 if "0.02" in member["label"] else 0.1
        alone = spec(BASE, **{"optimizer.rho": rho, "training.seed": member["seed"]})
        solo = client.post("/v1/jobs", json=alone).raise_for_status().json()
        solo = wait_for(client, solo["id"])
        assert solo["status"] == "succeeded", solo
        assert "ensemble" not in (solo["reproducibility"] or {})
        for name, value in solo["summary"].items():
            if not name.endswith(("_seconds", "per_second")):  # clocks differ
                assert job["summary"][name] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), (
                    name
                )
        assert job["summary"]["ensemble_size"] == 4.0  # its clocks are the ensemble's
