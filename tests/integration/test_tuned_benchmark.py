"""The tuned comparison protocol end to end: a study per optimizer on an equal budget, the
best configurations re-run over seeds, and the comparison, on the real stack."""

from __future__ import annotations

import time

import pytest

from tests.integration.specs import DIGITS, spec

pytestmark = pytest.mark.integration

BASE = spec(
    DIGITS,
    **{
        "name": "it-tuned",
        "data": {"name": "digits", "batch_size": 64, "validation_fraction": 0.2},
        "training.epochs": 2,
        "measure": {"every_epochs": 1, "num_examples": 64},
    },
)
LR = {"type": "log_uniform", "low": 0.01, "high": 1.0}
TUNED = {
    "mode": "tuned",
    "name": "it-tuned-sgd-sam",
    "base": BASE,
    "optimizers": [
        {
            "label": "SGD",
            "optimizer": {"name": "sgd", "base": {"name": "sgd", "lr": 0.1}},
            "search_space": {"optimizer.base.lr": LR},
        },
        {
            "label": "SAM",
            "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.1}},
            "search_space": {
                "optimizer.base.lr": LR,
                "optimizer.rho": {"type": "uniform", "low": 0.01, "high": 0.2},
            },
        },
    ],
    "sampler": {"name": "tpe", "seed": 3, "n_startup_trials": 2},
    "pruner": {"name": "none"},
    "budget": {"trials": 3, "parallel": 1},  # one at a time: the same asks every run
    "objective": {"metric": "final_val_acc", "direction": "maximize"},
    "seeds": [0, 1, 2],
}


def run_tuned(client, timeout: float = 240.0) -> dict:
    response = client.post("/v1/benchmarks", json=TUNED)
    assert response.status_code == 202, response.text
    url = f"/v1/benchmarks/{response.json()['id']}"
    deadline = time.monotonic() + timeout
    while True:
        report = client.get(url, params={"metric": "final_test_acc"}).raise_for_status().json()
        if report["tuning"]["phase"] == "re-running" and report["progress"]["fraction_done"] == 1:
            return report
        if time.monotonic() > deadline:
            raise TimeoutError(f"tuned benchmark never finished: {report['tuning']}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def tuned(client) -> dict:
    return run_tuned(client)


def test_each_optimizer_is_tuned_on_the_same_budget_on_the_validation_split(tuned, client):
    tuning = tuned["tuning"]
    assert tuning["split"] == {
        "tuned_on": "validation",
        "validation_fraction": 0.2,
        "compared_on": "test",
    }
    assert tuning["budget"]["trials"] == 3
    by_label = {o["label"]: o for o in tuning["optimizers"]}
    assert by_label["SGD"]["tuned"] == ["optimizer.base.lr"]
    assert by_label["SAM"]["tuned"] == ["optimizer.base.lr", "optimizer.rho"]
    for item in by_label.values():
        assert item["trials"] == 3 and item["status"] == "succeeded"
        study = client.get(f"/v1/studies/{item['study_id']}").raise_for_status().json()
        complete = [t for t in study["trials"] if t["state"] == "complete"]
        best = max(complete, key=lambda t: t["value"])
        assert item["best_params"] == best["params"] and item["best_value"] == best["value"]
        assert [p["trials"] for p in item["curve"]] == [1, 2, 3]
        assert item["curve"][-1]["best_value"] == item["best_value"]


def test_the_best_configurations_rerun_over_the_seeds_and_are_compared(tuned, client):
    by_label = {o["label"]: o for o in tuned["tuning"]["optimizers"]}
    reruns = tuned["job_list"]
    assert sorted((j["label"], j["seed"]) for j in reruns) == [
        (label, seed) for label in ("SAM", "SGD") for seed in (0, 1, 2)
    ]
    for item in reruns:
        job = client.get(f"/v1/jobs/{item['job_id']}").raise_for_status().json()
        assert job["status"] == "succeeded"
        assert job["spec"]["training"]["seed"] == item["seed"]
        best = by_label[item["label"]]["best_params"]
        assert job["spec"]["optimizer"]["base"]["lr"] == best["optimizer.base.lr"]
        if item["label"] == "SAM":
            assert job["spec"]["optimizer"]["rho"] == best["optimizer.rho"]
    configs = tuned["comparison"]["configurations"]
    assert set(configs) == {"SGD", "SAM"}
    assert all(c["metrics"]["final_test_acc"]["n"] == 3 for c in configs.values())
    assert "SAM" in tuned["comparison"]["paired_tests"]  # against the baseline, SGD


def test_the_protocol_is_reproducible_from_the_same_seeds(tuned, client):
    again = run_tuned(client)
    first = {o["label"]: o["best_params"] for o in tuned["tuning"]["optimizers"]}
    second = {o["label"]: o["best_params"] for o in again["tuning"]["optimizers"]}
    assert first == second
    assert again["comparison"]["ranking"] == tuned["comparison"]["ranking"]
