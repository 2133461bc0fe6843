"""Tiny specs (digits, teacher–student) and an event recorder for the training-loop tests."""

from __future__ import annotations

from typing import Any

from sam_core.spec import JobSpec
from sam_core.training import train
from sam_core.training.events import Checkpoint, Event, Finished, Metrics, Progress, Started


def digits_spec(**overrides: Any) -> JobSpec:
    """SAM on scikit-learn digits with a small MLP: 22 steps an epoch."""
    raw: dict[str, Any] = {
        "model": {"name": "mlp", "hidden": [32]},
        "data": {"name": "digits", "batch_size": 64},
        "optimizer": {"name": "sam", "rho": 0.05, "base": {"lr": 0.05}},
        "training": {"epochs": 2, "seed": 0, "device": "cpu", "log_every_steps": 5},
        "measure": {"every_epochs": 1, "num_examples": 256, "batch_size": 128},
    }
    return JobSpec.model_validate(_merge(raw, overrides))


def regression_spec(**overrides: Any) -> JobSpec:
    """A linear student of a one-hidden-layer teacher: 4 steps an epoch."""
    raw: dict[str, Any] = {
        "model": {"name": "linear"},
        "data": {"name": "teacher_student", "batch_size": 32, "n_train": 128, "n_test": 128},
        "optimizer": {"name": "sam", "rho": 0.05, "base": {"lr": 0.05}},
        "training": {"epochs": 2, "seed": 0, "device": "cpu", "log_every_steps": 1},
        "measure": {"every_epochs": 1, "num_examples": 64, "batch_size": 64},
    }
    return JobSpec.model_validate(_merge(raw, overrides))


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` merged in; a block naming another entry replaces the block."""
    out = dict(base)
    for key, value in overrides.items():
        renamed = isinstance(value, dict) and value.get("name", out.get(key, {}).get("name"))
        if renamed and isinstance(out.get(key), dict) and renamed != out[key].get("name"):
            out[key] = value
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class Recorder:
    """Runs a spec and keeps every event it emitted."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def started(self) -> Started:
        return self.of(Started)[0]

    @property
    def finished(self) -> Finished:
        return self.of(Finished)[0]

    @property
    def checkpoints(self) -> list[Checkpoint]:
        return self.of(Checkpoint)

    @property
    def metrics(self) -> list[Metrics]:
        return self.of(Metrics)

    @property
    def progress(self) -> list[Progress]:
        return self.of(Progress)

    def series(self, name: str) -> list[tuple[int, float]]:
        """`(step, value)` of every point of metric `name`."""
        return [(m.step, m.values[name]) for m in self.metrics if name in m.values]


def run(spec: JobSpec, **kwargs: Any) -> Recorder:
    recorder = Recorder()
    train(spec, recorder, **kwargs)
    return recorder
