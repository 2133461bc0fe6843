"""The run as the worker sees it: the events, their order and content, and how it ends."""

from __future__ import annotations

import math

import pytest
import torch

from sam_core.data import DataError
from sam_core.training import train
from sam_core.training.events import Checkpoint, Finished, Metrics, Progress, Started
from tests.unit.sam_core.training.specs import digits_spec, regression_spec, run


def test_events_come_started_first_finished_last_with_consistent_counts() -> None:
    rec = run(digits_spec())
    started, finished = rec.started, rec.finished
    assert isinstance(rec.events[0], Started) and isinstance(rec.events[-1], Finished)
    assert len(rec.of(Started)) == len(rec.of(Finished)) == 1
    assert started.steps_per_epoch == 22  # ceil(1347 / 64)
    assert started.total_steps == 44 and started.start_step == 0
    assert started.device == "cpu" and started.num_params == 64 * 32 + 32 + 32 * 10 + 10
    assert finished.status == "completed" and finished.step == 44
    steps = [e.step for e in rec.events if isinstance(e, Metrics | Progress | Checkpoint)]
    assert steps == sorted(steps), "events come in step order"
    assert [p.fraction for p in rec.progress][-1] == 1.0


def test_step_metrics_are_logged_every_log_every_steps() -> None:
    rec = run(digits_spec())
    logged = [step for step, _ in rec.series("train_loss_step")]
    assert logged == list(range(5, 45, 5))
    point = next(m for m in rec.metrics if "train_loss_step" in m.values)
    assert set(point.values) == {"train_loss_step", "train_acc_step", "lr", "rho", "grad_evals"}
    assert point.values["grad_evals"] == 2 * 5, "a SAM step costs two gradient evaluations"
    assert point.values["lr"] == 0.05 and point.values["rho"] == 0.05
    assert 0.0 <= point.values["train_acc_step"] <= 1.0


def test_progress_reports_steps_epochs_and_grad_evals() -> None:
    rec = run(digits_spec())
    last = rec.progress[-1]
    assert (last.step, last.epoch, last.grad_evals) == (44, 2.0, 88)
    clocks = [p.train_seconds for p in rec.progress]
    assert clocks == sorted(clocks) and clocks[-1] > 0


def test_evaluations_at_each_epoch_have_losses_accuracies_and_gaps() -> None:
    rec = run(digits_spec())
    evaluations = [m for m in rec.metrics if "test_loss" in m.values]
    assert [(m.step, m.epoch) for m in evaluations] == [(22, 1.0), (44, 2.0)]
    values = evaluations[-1].values
    assert values["gen_gap_loss"] == pytest.approx(values["test_loss"] - values["train_loss"])
    assert values["gen_gap_acc"] == pytest.approx(values["train_acc"] - values["test_acc"])
    assert "prediction_error" not in values, "digits has no teacher"


def test_summary_has_every_documented_metric() -> None:
    rec = run(digits_spec())
    summary = rec.finished.summary
    expected = {
        "final_train_loss",
        "final_test_loss",
        "final_train_acc",
        "final_test_acc",
        "best_test_acc",
        "best_test_loss",
        "gen_gap_loss",
        "gen_gap_acc",
        "steps",
        "epochs",
        "grad_evals",
        "train_seconds",
        "measure_seconds",
        "steps_per_second",
        "num_params",
    }
    assert expected <= set(summary)
    assert all(isinstance(v, float) for v in summary.values())
    assert (summary["steps"], summary["epochs"], summary["grad_evals"]) == (44.0, 2.0, 88.0)
    last_eval = [m for m in rec.metrics if "test_acc" in m.values][-1].values
    assert summary["final_test_acc"] == last_eval["test_acc"]
    best = max(m.values["test_acc"] for m in rec.metrics if "test_acc" in m.values)
    assert summary["best_test_acc"] == best


def test_sam_on_digits_learns_well_above_chance() -> None:
    rec = run(digits_spec(training={"epochs": 3}))
    assert rec.finished.summary["final_test_acc"] > 0.8  # chance is 0.1


def test_gd_takes_one_full_batch_step_per_epoch() -> None:
    rec = run(digits_spec(optimizer={"name": "gd", "base": {"lr": 0.5}}, training={"epochs": 3}))
    assert rec.started.steps_per_epoch == 1 and rec.finished.step == 3
    assert rec.finished.summary["grad_evals"] == 3.0


def test_max_steps_ends_the_run_early_with_a_final_evaluation() -> None:
    rec = run(digits_spec(training={"max_steps": 7}))
    assert rec.started.total_steps == 7 and rec.finished.step == 7
    assert rec.finished.status == "completed"
    assert [m.step for m in rec.metrics if "test_loss" in m.values] == [7]
    assert rec.checkpoints[-1].step == 7


def test_checkpoints_every_epoch_and_at_the_end() -> None:
    rec = run(digits_spec(training={"epochs": 3, "checkpoint_every_epochs": 2}))
    assert [c.step for c in rec.checkpoints] == [44, 66]


def test_cancel_stops_running_job_within_one_step_after_a_checkpoint() -> None:
    seen: list[int] = []
    events: list[object] = []
    spec = digits_spec(training={"log_every_steps": 1})

    def on_event(event: object) -> None:
        if isinstance(event, Progress):
            seen.append(event.step)
        events.append(event)

    finished = train(spec, on_event, should_stop=lambda: bool(seen) and seen[-1] >= 3)
    assert finished.status == "stopped" and finished.step == 3
    assert isinstance(events[-2], Checkpoint) and events[-2].step == 3
    assert events[-1] is finished and "step 3" in finished.message


def test_a_huge_learning_rate_diverges_with_the_step_and_keeps_earlier_metrics() -> None:
    spec = regression_spec(
        optimizer={"name": "sgd", "base": {"lr": 100.0}}, training={"epochs": 10}
    )
    rec = run(spec)
    finished = rec.finished
    assert finished.status == "diverged"
    assert finished.message == f"diverged at step {finished.step}: loss is " + (
        "nan" if "nan" in finished.message else "inf"
    )
    logged = [step for step, _ in rec.series("train_loss_step")]
    assert logged == list(range(1, finished.step)), "every step before divergence was logged"
    assert all(math.isfinite(v) for _, v in rec.series("train_loss_step"))
    assert all(c.step < finished.step for c in rec.checkpoints), "no checkpoint of a bad state"
    assert all(math.isfinite(v) for v in finished.summary.values())


def test_regression_has_no_accuracy_and_reports_prediction_error() -> None:
    rec = run(regression_spec())
    evaluation = [m for m in rec.metrics if "test_loss" in m.values][-1].values
    assert "prediction_error" in evaluation and evaluation["prediction_error"] >= 0.0
    assert not {"train_acc", "test_acc", "gen_gap_acc"} & set(evaluation)
    assert all("train_acc_step" not in m.values for m in rec.metrics)
    summary = rec.finished.summary
    assert "prediction_error" in summary and "final_test_acc" not in summary
    assert "best_test_acc" not in summary


def test_a_data_error_propagates_as_data_error() -> None:
    spec = digits_spec(data={"name": "npz", "path": "no-such-file.npz"})
    with pytest.raises(DataError, match="no-such-file"):
        train(spec, lambda event: None)


def test_bf16_autocast_runs_on_cpu() -> None:
    rec = run(digits_spec(training={"precision": "bf16", "max_steps": 5}))
    assert rec.finished.status == "completed"
    assert all(p.dtype == torch.float32 for p in rec.checkpoints[-1].state["model"].values())
