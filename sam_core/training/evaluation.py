"""Evaluations of a run: full-pass losses and accuracies, the teacher error, the measures.

An evaluation runs in eval mode on unaugmented data and leaves the model as it found
it. Sharpness measures run on a fixed set of `measure.num_examples` training examples,
chosen once per run from the seed, so that successive values are comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sam_core import sharpness
from sam_core.data import DataError
from sam_core.training.rng import MEASURE_STREAM, make_generator

Batches = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Evaluation:
    """Scalars (`values`) and non-scalar results (`extras`) taken at one step."""

    values: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


def split(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Batches:
    """`(x, y)` cut into consecutive batches (views, no copies)."""
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


class Evaluator:
    """Takes a run's evaluations; built once per run, called at each evaluation."""

    def __init__(self, spec: Any, task: Any, loss_fn: nn.Module, seed: int) -> None:
        self.task = task
        self.loss_fn = loss_fn
        self.seed = seed
        self.classification = task.task == "classification"
        batch_size = spec.measure.batch_size
        self.train_batches = split(task.x_train, task.y_train, batch_size)
        self.test_batches = split(task.x_test, task.y_test, batch_size)
        self.val_batches = (
            split(task.x_val, task.y_val, batch_size) if task.x_val is not None else None
        )
        self.items = [item for item in spec.measure.sharpness if item.name != "prediction_error"]
        self.names = _metric_names([item.name for item in self.items])
        wants_teacher = len(self.items) < len(spec.measure.sharpness)
        if wants_teacher and task.teacher is None:
            raise DataError(
                f"measure 'prediction_error' needs a synthetic task with a teacher; "
                f"data set {spec.data.name!r} has none"
            )
        self.measure_batches = self._measure_batches(spec.measure, task, seed)
        # λ_max measures start from the top eigenvectors of the previous evaluation
        # (kept in checkpoints: `warm_state` / `load_warm_state`).
        self.warm_starts: dict[str, Any] = {}

    def evaluate(self, model: nn.Module) -> Evaluation:
        """Train, validation and test loss (and accuracy), their gaps, the teacher error."""
        train = _loss_and_accuracy(model, self.loss_fn, self.train_batches)
        test = _loss_and_accuracy(model, self.loss_fn, self.test_batches)
        val = None
        if self.val_batches is not None:
            val = _loss_and_accuracy(model, self.loss_fn, self.val_batches)
        error = None
        if self.task.teacher is not None:
            error = sharpness.prediction_error(
                model, self.loss_fn, self.test_batches, seed=self.seed, teacher=self.task.teacher
            ).value
        return self.evaluation(train, test, error, val)

    def evaluation(
        self,
        train: dict[str, float],
        test: dict[str, float],
        prediction_error: float | None,
        val: dict[str, float] | None = None,
    ) -> Evaluation:
        """The values from train, test (and validation) `{"loss", "accuracy"}` and the
        teacher error: `val_loss`, `val_acc` only with a validation split.

        A seed ensemble computes these for all its members at once and names them here.
        """
        values = {
            "train_loss": train["loss"],
            "test_loss": test["loss"],
            "gen_gap_loss": test["loss"] - train["loss"],
        }
        if self.classification:
            values["train_acc"] = train["accuracy"]
            values["test_acc"] = test["accuracy"]
            values["gen_gap_acc"] = train["accuracy"] - test["accuracy"]
        if val is not None:
            values["val_loss"] = val["loss"]
            if self.classification:
                values["val_acc"] = val["accuracy"]
        if prediction_error is not None:
            values["prediction_error"] = float(prediction_error)
        return Evaluation(values)

    def measure(self, model: nn.Module) -> Evaluation:
        """Each requested sharpness measure on the fixed measurement batches.

        A measure that can warm-start (`sharpness.WARM_STARTED`) starts from what
        its previous evaluation in this run found; ``{name}_hvps`` records the
        Hessian-vector products each measure used.
        """
        out = Evaluation()
        for item, name in zip(self.items, self.names, strict=True):
            params = item.model_dump(exclude={"name"})
            if item.name in sharpness.WARM_STARTED:
                params["start_vectors"] = self.warm_starts.get(name)
            result = sharpness.compute(
                item.name, model, self.loss_fn, self.measure_batches, seed=self.seed, **params
            )
            if item.name in sharpness.WARM_STARTED:
                self.warm_starts[name] = result.warm_start
            _record(out, name, result)
        return out

    def warm_state(self) -> dict[str, Any]:
        """The warm-start vectors by metric name (tensors [dim, k]), for a checkpoint."""
        return {name: vectors for name, vectors in self.warm_starts.items() if vectors is not None}

    def load_warm_state(self, state: dict[str, Any]) -> None:
        """Restore `warm_state()`; vectors of a measure this spec lacks are dropped."""
        self.warm_starts = {name: v for name, v in state.items() if name in self.names}

    @staticmethod
    def _measure_batches(measure: Any, task: Any, seed: int) -> Batches:
        n = len(task.x_train)
        generator = make_generator(seed, MEASURE_STREAM)
        chosen = torch.randperm(n, generator=generator)[: measure.num_examples]
        chosen = chosen.sort().values.to(task.x_train.device)
        return split(task.x_train[chosen], task.y_train[chosen], measure.batch_size)


def _loss_and_accuracy(model: nn.Module, loss_fn: nn.Module, batches: Batches) -> dict[str, float]:
    loss, accuracy = sharpness.evaluate(model, loss_fn, batches)
    return {"loss": float(loss), "accuracy": math.nan if accuracy is None else float(accuracy)}


def _metric_names(names: list[str]) -> list[str]:
    """A metric name per requested measure: its name, then `name_2`, `name_3` on repeats."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _record(out: Evaluation, name: str, result: Any) -> None:
    """Scalars of a measure's result as values, everything else as extras."""
    if result.value is not None:
        out.values[name] = float(result.value)
    if result.converged is not None:
        out.values[f"{name}_converged"] = float(bool(result.converged))
    if result.cost.hvps:
        out.values[f"{name}_hvps"] = float(result.cost.hvps)
    non_scalar = {}
    for key, item in (result.extras or {}).items():
        if _is_scalar(item):
            out.values[f"{name}_{key}"] = float(item)
        else:
            non_scalar[key] = _plain(item)
    if non_scalar:
        out.extras[name] = non_scalar


def _is_scalar(item: Any) -> bool:
    if isinstance(item, bool):
        return False
    if isinstance(item, int | float):
        return True
    return isinstance(item, torch.Tensor) and item.numel() == 1


def _plain(item: Any) -> Any:
    """Tensors and arrays as (nested) lists, so extras serialise as JSON."""
    if isinstance(item, torch.Tensor):
        return item.detach().cpu().tolist()
    if hasattr(item, "tolist"):
        return item.tolist()
    if isinstance(item, dict):
        return {key: _plain(value) for key, value in item.items()}
    if isinstance(item, list | tuple):
        return [_plain(value) for value in item]
    return item
