"""Seed ensembles: each member's run equals its solo `train(spec)` run to float32 rounding."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from sam_core.spec import JobSpec
from sam_core.training import train
from sam_core.training.ensemble import can_ensemble, train_ensemble
from sam_core.training.events import Checkpoint, Event, Finished, Metrics, Progress, Started
from tests.tolerance import ensemble_tolerance
from tests.unit.sam_core.training.specs import Recorder, _merge, digits_spec, run

# The largest compared run is the digits MLP: 44 steps, sums over at most 64 terms (the
# batch and the 64 input features); the teacher runs take at most 24 steps over 32 terms.
TOLERANCE = ensemble_tolerance(steps=44, width=64)
WALL_TIMES = {"train_seconds", "measure_seconds", "steps_per_second"}


def relu_spec(seed: int = 0, **overrides: Any) -> JobSpec:
    """SAM on a two-layer ReLU network and a ReLU teacher: 4 steps an epoch."""
    raw: dict[str, Any] = {
        "model": {"name": "two_layer_relu", "width": 32},
        "data": {"name": "relu_teacher", "batch_size": 32, "n_train": 128, "n_test": 128},
        "optimizer": {"name": "sam", "rho": 0.05, "base": {"lr": 0.1}},
        "training": {"epochs": 3, "seed": seed, "device": "cpu", "log_every_steps": 1},
        "measure": {"every_epochs": 1, "num_examples": 64, "batch_size": 64},
    }
    return JobSpec.model_validate(_merge(raw, overrides))


def student_spec(seed: int = 0, **overrides: Any) -> JobSpec:
    """A one-hidden-layer student of a teacher: 4 steps an epoch."""
    raw: dict[str, Any] = {
        "model": {"name": "one_hidden", "width": 16},
        "data": {"name": "teacher_student", "batch_size": 32, "n_train": 128, "n_test": 128},
        "optimizer": {"name": "sam", "rho": 0.05, "base": {"lr": 0.05}},
        "training": {"epochs": 2, "seed": seed, "device": "cpu", "log_every_steps": 1},
        "measure": {"every_epochs": 1, "num_examples": 64, "batch_size": 64},
    }
    return JobSpec.model_validate(_merge(raw, overrides))


def run_ensemble(specs: list[JobSpec], **kwargs: Any) -> list[Recorder]:
    recorders = [Recorder() for _ in specs]

    def on_event(i: int, event: Event) -> None:
        recorders[i](event)

    finished = train_ensemble(specs, on_event, **kwargs)
    assert finished == [r.finished for r in recorders]
    return recorders


def assert_close(a: float, b: float, what: str) -> None:
    same = math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    assert same or (math.isnan(a) and math.isnan(b)), f"{what}: {a} vs {b}"


def assert_same_tensors(a: Any, b: Any, what: str) -> None:
    """Nested dicts/lists of tensors and numbers equal within the tolerance."""
    if isinstance(a, dict):
        assert set(a) == set(b), what
        for key in a:
            assert_same_tensors(a[key], b[key], f"{what}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), what
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_tensors(x, y, f"{what}[{k}]")
    elif isinstance(a, torch.Tensor) and a.is_floating_point():
        torch.testing.assert_close(a, b, rtol=TOLERANCE, atol=TOLERANCE, msg=what)
    elif isinstance(a, float) and "seconds" not in what:
        assert_close(a, b, what)
    elif not isinstance(a, float):
        assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, what


def assert_same_run(solo: Recorder, member: Recorder) -> None:
    """Same events in the same order, equal within TOLERANCE but for wall times."""
    kinds = [type(e).__name__ for e in solo.events]
    assert kinds == [type(e).__name__ for e in member.events]
    for a, b in zip(solo.events, member.events, strict=True):
        assert_same_event(a, b)


def assert_same_event(a: Event, b: Event) -> None:
    if isinstance(a, Started | Progress):
        assert _without_clock(a) == _without_clock(b)
    elif isinstance(a, Metrics):
        assert (a.step, a.epoch, set(a.values)) == (b.step, b.epoch, set(b.values))
        for name, value in a.values.items():
            assert_close(value, b.values[name], f"{name} at step {a.step}")
    elif isinstance(a, Checkpoint):
        assert (a.step, a.epoch) == (b.step, b.epoch)
        skip = {"clock"}
        assert_same_tensors(
            {k: v for k, v in a.state.items() if k not in skip},
            {k: v for k, v in b.state.items() if k not in skip},  # type: ignore[union-attr]
            f"checkpoint at step {a.step}",
        )
    else:
        assert isinstance(a, Finished) and isinstance(b, Finished)
        assert (a.status, a.step, a.message) == (b.status, b.step, b.message)
        # A member's summary adds `ensemble_size`: its clocks are its ensemble's.
        assert set(b.summary) - {"ensemble_size"} == set(a.summary)
        for name in set(a.summary) - WALL_TIMES:
            assert_close(a.summary[name], b.summary[name], f"summary {name}")


def _without_clock(event: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if k != "train_seconds"}


# --- members equal their solo runs ------------------------------------------------------


@pytest.mark.parametrize("rule", ["sam", "sgd"])
def test_two_layer_relu_members_equal_solo_runs_across_seeds_and_rho(rule: str) -> None:
    if rule == "sam":
        specs = [
            relu_spec(seed, optimizer={"rho": rho}) for seed in (0, 1, 2) for rho in (0.02, 0.1)
        ]
    else:
        specs = [
            relu_spec(seed, optimizer={"name": "sgd", "base": {"lr": 0.1}}) for seed in (0, 1, 2)
        ]
    for spec, member in zip(specs, run_ensemble(specs), strict=True):
        assert_same_run(run(spec), member)


def test_mlp_on_digits_members_equal_solo_runs() -> None:
    specs = [
        digits_spec(training={"seed": seed}, optimizer={"rho": rho})
        for seed, rho in ((0, 0.05), (1, 0.05), (1, 0.0))
    ]
    members = run_ensemble(specs)
    for spec, member in zip(specs, members, strict=True):
        assert_same_run(run(spec), member)
    assert members[0].finished.summary["final_test_acc"] > 0.5
    assert members[2].finished.summary["grad_evals"] == 44.0, "ρ = 0 costs one pass a step"


def test_members_with_a_validation_split_equal_solo_runs_validation_metrics_included() -> None:
    split = {"validation_fraction": 0.2}
    specs = [digits_spec(training={"seed": seed}, data=split) for seed in (0, 1)]
    members = run_ensemble(specs)
    for spec, member in zip(specs, members, strict=True):
        solo = run(spec)
        assert {"final_val_loss", "final_val_acc", "best_val_acc"} <= set(solo.finished.summary)
        assert_same_run(solo, member)


def test_members_sharpness_measures_equal_solo_runs() -> None:
    measure = {"sharpness": ["ascent_sharpness", "hessian_trace", "average_sharpness"]}
    specs = [relu_spec(seed, measure=measure, training={"epochs": 2}) for seed in (0, 1)]
    members = run_ensemble(specs)
    for spec, member in zip(specs, members, strict=True):
        assert_same_run(run(spec), member)
    assert "hessian_trace" in members[0].finished.summary


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "usam", "rho": 0.1},
        {"name": "unified_sam", "rho": 0.1, "lam": 0.5},
        {"name": "unified_sam", "rho": 0.1, "lam_schedule": "one_minus_inv_t"},
        {"name": "sam", "rho": 0.1, "rho_schedule": "lr", "perturb_weight_decay": True},
        {"name": "gd", "base": {"lr": 0.2}},
        {"name": "sam", "base": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01}},
    ],
    ids=["usam", "unified_sam", "unified_sam_schedule", "sam_rho_schedule", "gd", "adamw"],
)
def test_every_vectorised_rule_equals_its_solo_run(optimizer: dict[str, Any]) -> None:
    base = {"optimizer": optimizer, "training": {"grad_clip": 1.0}}
    specs = [student_spec(0, **base), student_spec(1, **base)]
    specs.append(student_spec(2, **_merge(base, {"optimizer": {"base": {"lr": 0.02}}})))
    for spec, member in zip(specs, run_ensemble(specs), strict=True):
        assert_same_run(run(spec), member)


@pytest.mark.parametrize("model", [{"name": "linear"}, {"name": "one_hidden", "width": 16}])
def test_importance_sampled_members_equal_solo_runs(model: dict[str, Any]) -> None:
    """Fixed scores for a linear model, scores refreshed from each member's weights else."""
    data = {"sampling": "importance"}
    specs = [student_spec(seed, model=model, data=data) for seed in (0, 1)]
    for spec, member in zip(specs, run_ensemble(specs), strict=True):
        assert_same_run(run(spec), member)


@pytest.mark.parametrize("nesterov", [False, True])
def test_per_member_momentum_weight_decay_and_schedule_floor_equal_solo_runs(
    nesterov: bool,
) -> None:
    momenta = (0.3 if nesterov else 0.0, 0.5, 0.9)
    decays, lrs = (0.0, 1e-3, 5e-4), (0.05, 0.1, 0.02)
    specs = [
        student_spec(
            k,
            optimizer={
                "base": {"momentum": m, "weight_decay": wd, "lr": lr, "nesterov": nesterov},
                "schedule": {"name": "cosine", "warmup_steps": 2, "min_lr": 0.001 * k},
            },
        )
        for k, (m, wd, lr) in enumerate(zip(momenta, decays, lrs, strict=True))
    ]
    for spec, member in zip(specs, run_ensemble(specs), strict=True):
        assert_same_run(run(spec), member)


# --- one member stops or diverges alone ---------------------------------------------------


def test_stopping_one_member_leaves_the_others_equal_to_their_solo_runs() -> None:
    specs = [relu_spec(seed) for seed in (0, 1, 2)]
    members = run_ensemble(specs, should_stop=stop_after(1, 5))
    stopped = members[1]
    assert stopped.finished.status == "stopped" and stopped.finished.step == 5
    assert isinstance(stopped.events[-2], Checkpoint) and stopped.events[-2].step == 5
    for k in (0, 2):
        assert_same_run(run(specs[k]), members[k])
    solo_stopped = _stopped_solo(specs[1], 5)
    assert_same_run(solo_stopped, stopped)


def stop_after(member: int, steps: int) -> Any:
    """A `should_stop` that stops `member` once it has taken `steps` steps.

    The ensemble asks once per step for each member still training.
    """
    asked = [0]

    def should_stop(i: int) -> bool:
        if i != member:
            return False
        asked[0] += 1
        return asked[0] > steps

    return should_stop


def _stopped_solo(spec: JobSpec, step: int) -> Recorder:
    recorder = Recorder()
    seen = [0]

    def on_event(event: Event) -> None:
        if isinstance(event, Progress):
            seen[0] = event.step
        recorder(event)

    train(spec, on_event, should_stop=lambda: seen[0] >= step)
    return recorder


def test_a_stopped_member_continues_solo_to_its_uninterrupted_result() -> None:
    specs = [relu_spec(seed) for seed in (0, 1)]
    members = run_ensemble(specs, should_stop=stop_after(0, 6))
    state = members[0].checkpoints[-1].state
    resumed = run(specs[0], resume=state)
    uninterrupted = run(specs[0])
    assert resumed.finished.status == "completed"
    assert_same_tensors(
        resumed.checkpoints[-1].state["model"],
        uninterrupted.checkpoints[-1].state["model"],
        "resumed weights",
    )
    assert_same_event(uninterrupted.finished, resumed.finished)


def test_a_diverging_member_ends_alone_and_the_others_complete() -> None:
    specs = [
        student_spec(0, optimizer={"name": "sgd", "base": {"lr": 0.05}}, training={"epochs": 6}),
        student_spec(1, optimizer={"name": "sgd", "base": {"lr": 100.0}}, training={"epochs": 6}),
        student_spec(2, optimizer={"name": "sgd", "base": {"lr": 0.05}}, training={"epochs": 6}),
    ]
    members = run_ensemble(specs)
    diverged = members[1].finished
    assert diverged.status == "diverged" and "diverged at step" in diverged.message
    solo = run(specs[1])
    assert (solo.finished.status, solo.finished.step) == (diverged.status, diverged.step)
    # Blowing-up weights magnify rounding: the diverged member is held to its ending only.
    assert [type(e) for e in solo.events] == [type(e) for e in members[1].events]
    for k in (0, 2):
        assert_same_run(run(specs[k]), members[k])


def test_a_member_stopped_before_its_first_step_keeps_its_initial_state() -> None:
    specs = [relu_spec(seed) for seed in (0, 1)]
    members = run_ensemble(specs, should_stop=lambda i: i == 1)
    assert members[1].finished.status == "stopped" and members[1].finished.step == 0
    assert_same_run(_stopped_solo(specs[1], 0), members[1])
    assert members[0].finished.status == "completed"


# --- which groups can train together --------------------------------------------------------


def test_seeds_and_scalar_hyperparameters_can_ensemble() -> None:
    specs = [
        relu_spec(0),
        relu_spec(1, optimizer={"rho": 0.2, "base": {"lr": 0.3, "momentum": 0.5}}),
        relu_spec(2, optimizer={"base": {"weight_decay": 0.0}}),
    ]
    assert can_ensemble(specs) == (True, "")


@pytest.mark.parametrize(
    ("other", "reason"),
    [
        ({"model": {"width": 64}}, "differs from job 0 in model.width"),
        ({"data": {"batch_size": 16}}, "differs from job 0 in data.batch_size"),
        ({"training": {"epochs": 4}}, "differs from job 0 in training.epochs"),
        ({"optimizer": {"name": "usam"}}, "differs from job 0 in optimizer.name"),
        ({"optimizer": {"base": {"nesterov": True}}}, "optimizer.base.nesterov"),
        ({"optimizer": {"schedule": {"name": "cosine"}}}, "optimizer.schedule.name"),
    ],
)
def test_jobs_differing_in_more_than_scalars_cannot_ensemble(
    other: dict[str, Any], reason: str
) -> None:
    ok, why = can_ensemble([relu_spec(0), relu_spec(1, **other)])
    assert not ok and reason in why and "job 1" in why


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"optimizer": {"name": "esam"}}, "rule 'esam' is not vectorised"),
        ({"optimizer": {"name": "sam", "base": {"name": "sgd"}}, "model": {"name": "cnn"}}, "cnn"),
        ({"model": {"name": "mlp", "batchnorm": True}}, "BatchNorm"),
        ({"training": {"precision": "bf16"}}, "precision 'bf16'"),
    ],
)
def test_unsupported_rules_models_and_precision_are_refused_with_the_reason(
    overrides: dict[str, Any], reason: str
) -> None:
    spec = relu_spec(0, **overrides)
    ok, why = can_ensemble([spec])
    assert not ok and reason in why
    with pytest.raises(ValueError, match="cannot train these jobs as one ensemble"):
        train_ensemble([spec], lambda i, e: None)


def test_an_empty_group_cannot_ensemble() -> None:
    assert can_ensemble([]) == (False, "an ensemble needs at least one job")
