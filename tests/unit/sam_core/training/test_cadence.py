"""Evaluation and sharpness measures run on independent cadences (`evaluate`, `measure`)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sam_core.spec import JobSpec
from tests.unit.sam_core.training.specs import regression_spec, run
from tests.unit.sam_core.training.test_ensemble import assert_same_run, relu_spec, run_ensemble

TRACE = {"name": "hessian_trace", "probes": 4}


def _steps(rec: Any, name: str) -> list[int]:
    return [m.step for m in rec.metrics if name in m.values]


def test_a_per_epoch_test_curve_does_not_force_a_measure_every_epoch() -> None:
    # 4 steps an epoch, 6 epochs: test loss after every epoch, the Hessian every third.
    spec = regression_spec(
        training={"epochs": 6},
        evaluate={"every_epochs": 1},
        measure={"every_epochs": 3, "sharpness": [TRACE]},
    )
    rec = run(spec)
    assert _steps(rec, "test_loss") == [4, 8, 12, 16, 20, 24]
    assert _steps(rec, "hessian_trace") == [12, 24]
    measured = [m for m in rec.metrics if "hessian_trace" in m.values]
    assert all("test_loss" in m.values for m in measured), "due together: one event"
    assert rec.finished.summary["hessian_trace"] == measured[-1].values["hessian_trace"]


def test_measures_every_epoch_with_a_sparse_test_curve_emit_measures_alone() -> None:
    spec = regression_spec(
        training={"epochs": 4},
        evaluate={"every_epochs": 2},
        measure={"every_epochs": 1, "sharpness": [TRACE]},
    )
    rec = run(spec)
    assert _steps(rec, "hessian_trace") == [4, 8, 12, 16]
    assert _steps(rec, "test_loss") == [8, 16]
    alone = [m for m in rec.metrics if m.step in (4, 12) and "hessian_trace" in m.values]
    assert [set(m.values) & {"test_loss", "train_loss"} for m in alone] == [set(), set()]
    assert rec.finished.summary["final_test_loss"] == rec.metrics[-1].values["test_loss"]


def test_step_cadences_run_on_their_steps_and_both_once_more_at_the_end() -> None:
    spec = regression_spec(
        training={"epochs": 2},  # 8 steps
        evaluate={"every_steps": 3},
        measure={"every_epochs": None, "every_steps": 5, "sharpness": [TRACE]},
    )
    rec = run(spec)
    assert _steps(rec, "test_loss") == [3, 6, 8]
    assert _steps(rec, "hessian_trace") == [5, 8]


def test_the_cadences_do_not_change_the_training_trajectory() -> None:
    sparse = run(regression_spec(evaluate={"every_steps": 3}, measure={"every_epochs": 2}))
    dense = run(regression_spec(measure={"every_epochs": 1, "sharpness": [TRACE]}))
    series = [v for _, v in sparse.series("train_loss_step")]
    assert series == [v for _, v in dense.series("train_loss_step")]
    assert sparse.finished.summary["final_test_loss"] == dense.finished.summary["final_test_loss"]


def test_without_sharpness_no_measure_only_events_are_emitted() -> None:
    rec = run(regression_spec(evaluate={"every_epochs": 2}, measure={"every_epochs": 1}))
    evaluations = [m for m in rec.metrics if "train_loss_step" not in m.values]
    assert [m.step for m in evaluations] == [8]


def test_a_spec_without_evaluate_evaluates_on_the_measure_cadence_as_before() -> None:
    raw: dict[str, Any] = {
        "model": {"name": "linear"},
        "data": {"name": "teacher_student"},
        "optimizer": {"name": "sgd"},
        "measure": {"every_epochs": 5, "sharpness": ["hessian_trace"]},
    }
    spec = JobSpec.model_validate(raw)
    assert (spec.evaluate.every_epochs, spec.measure.every_epochs) == (5, 5)
    assert JobSpec.model_validate(spec.model_dump()) == spec, "a stored spec reads back the same"
    bare = JobSpec.model_validate({k: v for k, v in raw.items() if k != "measure"})
    assert (bare.evaluate.every_epochs, bare.measure.every_epochs) == (1, 1)
    steps = JobSpec.model_validate({**raw, "measure": {"every_steps": 7}})
    assert (steps.evaluate.every_steps, steps.evaluate.every_epochs) == (7, None)


@pytest.mark.parametrize("block", ["evaluate", "measure"])
def test_a_cadence_takes_epochs_or_steps_not_both(block: str) -> None:
    raw = {
        "model": {"name": "linear"},
        "data": {"name": "teacher_student"},
        "optimizer": {"name": "sgd"},
        block: {"every_epochs": 1, "every_steps": 10},
    }
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(raw)
    error = caught.value.errors()[0]
    assert error["loc"][0] == block and "not both" in error["msg"]


def test_ensemble_members_keep_the_solo_cadences() -> None:
    cadence = {
        "evaluate": {"every_steps": 3},
        "measure": {"every_epochs": 2, "sharpness": [TRACE]},
    }
    specs = [relu_spec(seed, training={"epochs": 4}, **cadence) for seed in (0, 1)]
    members = run_ensemble(specs)
    for spec, member in zip(specs, members, strict=True):
        assert_same_run(run(spec), member)
    assert _steps(members[0], "hessian_trace") == [8, 16]
    assert _steps(members[0], "test_loss") == [3, 6, 9, 12, 15, 16]
