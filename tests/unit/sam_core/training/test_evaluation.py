"""Measures: on the schedule asked for, on fixed batches, and off the training clock."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sam_core.data import DataError
from sam_core.training import evaluation, loop, train
from tests.unit.sam_core.training.specs import digits_spec, regression_spec, run

MEASURES = [{"name": "hessian_trace", "probes": 2}, {"name": "ascent_sharpness"}]


def test_measures_are_taken_every_n_epochs_and_at_the_end() -> None:
    spec = digits_spec(training={"epochs": 3}, measure={"every_epochs": 2, "sharpness": MEASURES})
    rec = run(spec)
    measured = [m for m in rec.metrics if "hessian_trace" in m.values]
    assert [m.step for m in measured] == [44, 66]
    assert all("ascent_sharpness" in m.values and "test_loss" in m.values for m in measured)
    summary = rec.finished.summary
    assert summary["hessian_trace"] == measured[-1].values["hessian_trace"]
    assert summary["ascent_sharpness"] == measured[-1].values["ascent_sharpness"]


def test_a_measure_asked_twice_gets_a_second_name() -> None:
    twice = [{"name": "ascent_sharpness", "rho": 0.01}, {"name": "ascent_sharpness", "rho": 0.1}]
    rec = run(digits_spec(training={"max_steps": 3}, measure={"sharpness": twice}))
    values = rec.metrics[-1].values
    assert 0 < values["ascent_sharpness"] < values["ascent_sharpness_2"]


def test_scalar_results_are_values_and_the_rest_extras() -> None:
    asked = [{"name": "loss_landscape_1d", "points": 5}, {"name": "hessian_trace", "probes": 2}]
    rec = run(digits_spec(training={"max_steps": 3}, measure={"sharpness": asked}))
    point = rec.metrics[-1]
    assert {"loss_landscape_1d", "hessian_trace", "hessian_trace_stderr"} <= set(point.values)
    slice_1d = point.extras["loss_landscape_1d"]
    assert len(slice_1d["alphas"]) == len(slice_1d["losses"]) == 5
    assert all(isinstance(v, float) for v in slice_1d["losses"]), "plain floats, for JSON"


class _FakeClock:
    """perf_counter for the loop: a tick per call, and 1000 s for every measurement."""

    def __init__(self) -> None:
        self.now = 0.0
        self.ticks = itertools.count()

    def perf_counter(self) -> float:
        next(self.ticks)
        self.now += 0.001
        return self.now


def test_the_training_clock_excludes_measurement_time(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _FakeClock()
    monkeypatch.setattr(loop, "time", clock)
    measure = evaluation.Evaluator.measure

    def slow_measure(self: Any, model: Any) -> Any:
        clock.now += 1000.0
        return measure(self, model)

    monkeypatch.setattr(evaluation.Evaluator, "measure", slow_measure)
    rec = run(digits_spec(measure={"sharpness": MEASURES}))
    summary = rec.finished.summary
    assert summary["measure_seconds"] >= 2 * 1000.0, "two evaluations, each 1000 s"
    assert summary["train_seconds"] < 1.0, "44 steps of a few ticks each"
    assert rec.progress[-1].train_seconds == summary["train_seconds"]


def test_regression_without_a_teacher_has_no_prediction_error(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=generator)
    y = x.sum(1, keepdim=True)
    np.savez(tmp_path / "sums.npz", x_train=x[:64], y_train=y[:64], x_test=x[64:], y_test=y[64:])
    spec = regression_spec(data={"name": "npz", "path": "sums.npz", "batch_size": 16})
    rec = run(spec, data_dir=tmp_path)
    assert rec.finished.status == "completed" and "prediction_error" not in rec.finished.summary
    asked = regression_spec(
        data={"name": "npz", "path": "sums.npz"}, measure={"sharpness": ["prediction_error"]}
    )
    with pytest.raises(DataError, match="needs a synthetic task with a teacher"):
        train(asked, lambda event: None, data_dir=tmp_path)


def test_prediction_error_asked_of_a_synthetic_task_is_reported_once() -> None:
    rec = run(regression_spec(measure={"sharpness": ["prediction_error"]}))
    evaluations = [m for m in rec.metrics if "prediction_error" in m.values]
    assert len(evaluations) == 2 and "prediction_error_2" not in evaluations[-1].values
