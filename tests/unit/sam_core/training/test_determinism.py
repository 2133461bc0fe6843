"""Same seed, same run; a resumed run ends exactly where an unbroken one does."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch

from sam_core.spec import JobSpec
from sam_core.training import loop, train
from sam_core.training.events import Checkpoint, Progress
from tests.unit.sam_core.training.specs import digits_spec, regression_spec, run

WALL_TIMES = {"train_seconds", "measure_seconds", "steps_per_second"}


def _without_wall_times(summary: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in summary.items() if k not in WALL_TIMES}


def _round_trip(state: dict[str, Any]) -> dict[str, Any]:
    """Through bytes, as the worker stores it, loading back with weights_only=True."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _stop_at(step: int) -> tuple[Any, Any, list[Checkpoint]]:
    """An event callback and a should_stop that stop a run once `step` steps are done."""
    seen: list[int] = [0]
    checkpoints: list[Checkpoint] = []

    def on_event(event: object) -> None:
        if isinstance(event, Progress):
            seen.append(event.step)
        if isinstance(event, Checkpoint):
            checkpoints.append(event)

    return on_event, lambda: seen[-1] >= step, checkpoints


def _assert_resume_is_exact(spec: JobSpec, stop_step: int) -> None:
    whole = run(spec)
    on_event, should_stop, checkpoints = _stop_at(stop_step)
    stopped = train(spec, on_event, should_stop)
    assert stopped.status == "stopped" and stopped.step == stop_step
    resumed = run(spec, resume=_round_trip(checkpoints[-1].state))
    assert resumed.started.start_step == stop_step
    assert resumed.finished.status == "completed"
    final_whole = whole.checkpoints[-1].state["model"]
    final_resumed = resumed.checkpoints[-1].state["model"]
    for name, tensor in final_whole.items():
        assert torch.equal(tensor, final_resumed[name]), f"{name} differs after resume"
    assert _without_wall_times(resumed.finished.summary) == _without_wall_times(
        whole.finished.summary
    )
    later = [m for m in whole.metrics if m.step > stop_step]
    assert [(m.step, m.values) for m in later] == [(m.step, m.values) for m in resumed.metrics]


def test_same_seed_gives_the_same_run() -> None:
    spec = digits_spec(training={"epochs": 1})
    first, second = run(spec), run(spec)
    assert _without_wall_times(first.finished.summary) == _without_wall_times(
        second.finished.summary
    )


def test_another_seed_gives_another_run() -> None:
    first = run(digits_spec(training={"epochs": 1, "seed": 0}))
    second = run(digits_spec(training={"epochs": 1, "seed": 1}))
    assert first.finished.summary["final_train_loss"] != second.finished.summary["final_train_loss"]


def test_what_is_measured_does_not_change_the_weights() -> None:
    plain = run(digits_spec(training={"epochs": 1}))
    measured = run(
        digits_spec(
            training={"epochs": 1},
            measure={"sharpness": [{"name": "average_sharpness", "samples": 2}]},
        )
    )
    for name, tensor in plain.checkpoints[-1].state["model"].items():
        assert torch.equal(tensor, measured.checkpoints[-1].state["model"][name])


@pytest.mark.parametrize(
    ("label", "spec", "stop_step"),
    [
        (
            "vasso, importance sampling, stopped mid-epoch",
            digits_spec(
                optimizer={"name": "vasso", "theta": 0.5},
                data={"sampling": "importance"},
                training={"log_every_steps": 1},
            ),
            30,
        ),
        (
            "fsam with a cosine schedule, stopped at an epoch's end",
            digits_spec(
                optimizer={"name": "fsam", "schedule": {"name": "cosine", "warmup_steps": 5}},
                training={"log_every_steps": 1},
            ),
            22,
        ),
        (
            "rsam draws at random, tau-nice sampling, regression",
            regression_spec(
                model={"name": "one_hidden", "width": 8},
                optimizer={"name": "rsam", "sigma": 0.05},
                data={"sampling": "tau_nice", "tau": 16},
                training={"epochs": 3},
            ),
            13,
        ),
    ],
)
def test_a_resumed_run_ends_bit_for_bit_where_an_unbroken_one_does(
    label: str, spec: JobSpec, stop_step: int
) -> None:
    _assert_resume_is_exact(spec, stop_step)


def test_a_checkpoint_of_another_spec_is_refused() -> None:
    state = run(digits_spec(training={"max_steps": 2})).checkpoints[-1].state
    other = digits_spec(training={"max_steps": 2, "seed": 5})
    with pytest.raises(ValueError, match="taken from spec"):
        train(other, lambda event: None, resume=state)


def test_a_resumed_run_replays_augmentation_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Digits has no augmentation; give it a random one drawn from the run's generator."""
    real_load_task = loop.load_task
    draws: list[int] = []

    def noisy(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        draws.append(len(x))
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + 0.5 * noise

    def load_task_with_augment(*args: Any, **kwargs: Any) -> Any:
        task = real_load_task(*args, **kwargs)
        task.augment = noisy
        return task

    monkeypatch.setattr(loop, "load_task", load_task_with_augment)
    spec = digits_spec(optimizer={"name": "vasso"}, training={"log_every_steps": 1})
    _assert_resume_is_exact(spec, stop_step=17)
    assert draws, "the augmentation ran"
    plain = run(spec).finished.summary["final_train_loss"]
    monkeypatch.setattr(loop, "load_task", real_load_task)
    assert run(spec).finished.summary["final_train_loss"] != plain, "and changed training"


def test_a_resumed_run_keeps_the_lanczos_warm_starts() -> None:
    """λ_max starts from the previous evaluation's top vectors, kept in the checkpoint:
    the resumed run measures (values and products used) exactly as the unbroken one."""
    eigen = {"name": "hessian_top_eigenvalue", "top_k": 2, "tol": 1e-6, "max_iter": 60}
    spec = regression_spec(training={"epochs": 3}, measure={"sharpness": [eigen]})
    _assert_resume_is_exact(spec, stop_step=4)
    whole = run(spec)
    saved = whole.checkpoints[0].state["warm_starts"]["hessian_top_eigenvalue"]
    assert saved.shape[1] == 2
    key = "hessian_top_eigenvalue_hvps"
    assert len([m for m in whole.metrics if key in m.values]) == 3


def test_warm_start_off_measures_every_evaluation_from_a_cold_start() -> None:
    eigen = {"name": "hessian_top_eigenvalue", "top_k": 2, "tol": 1e-6, "max_iter": 60}
    cold = {**eigen, "warm_start": False}
    warm_run = run(regression_spec(training={"epochs": 3}, measure={"sharpness": [eigen]}))
    cold_run = run(regression_spec(training={"epochs": 3}, measure={"sharpness": [cold]}))
    key = "hessian_top_eigenvalue_hvps"
    warm = [m.values[key] for m in warm_run.metrics if key in m.values]
    cold_hvps = [m.values[key] for m in cold_run.metrics if key in m.values]
    assert warm[0] == cold_hvps[0]  # the first evaluation starts cold either way
    assert sum(warm[1:]) < sum(cold_hvps[1:])
