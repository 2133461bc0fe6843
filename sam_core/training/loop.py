"""The training loop: runs a `JobSpec` and reports through a callback.

In the manner of minGPT's trainer, the loop knows nothing of HTTP, SQL or files: it
calls `on_event` with the events of `sam_core.training.events` and asks `should_stop`
before every step. `train(spec, on_event)` is the whole interface.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from sam_core.data import load_task
from sam_core.models import build_model
from sam_core.optim import BatchClosure, SharpnessAware, create_optimizer
from sam_core.spec import JobSpec
from sam_core.training import checkpoint
from sam_core.training.evaluation import Evaluation, Evaluator
from sam_core.training.events import Checkpoint, Event, Finished, Metrics, Progress, Started
from sam_core.training.rng import (
    AUGMENT_STREAM,
    OPTIMIZER_STREAM,
    SAMPLING_STREAM,
    global_rng_state,
    make_generator,
    preserved_global_rng,
    seed_everything,
    set_global_rng_state,
    stream_seed,
)
from sam_core.training.sampling import EpochSampler
from sam_core.training.schedules import make_scheduler

Status = Literal["completed", "diverged", "stopped"]


def train(
    spec: JobSpec,
    on_event: Callable[[Event], None],
    should_stop: Callable[[], bool] = lambda: False,
    *,
    resume: dict[str, Any] | None = None,
    data_dir: str | Path | None = None,
) -> Finished:
    """Run `spec` to the end, to a stop request, or to divergence; return `Finished`.

    `resume` is the `state` of a `Checkpoint` this function emitted for the same spec;
    the run then continues from it bit-for-bit (on the CPU).
    """
    trainer = Trainer(spec, on_event, should_stop, data_dir=data_dir)
    if resume is not None:
        trainer.load_state(resume)
    return trainer.run()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("training.device is 'cuda' but this machine has no CUDA device")
    return torch.device(name)


class Trainer:
    """One run: the objects built from the spec, the counters, and the loop over them."""

    def __init__(
        self,
        spec: JobSpec,
        on_event: Callable[[Event], None],
        should_stop: Callable[[], bool],
        *,
        data_dir: str | Path | None = None,
        task: Any = None,
    ) -> None:
        """`task` is a `TaskData` already loaded for `spec.data` and put on the device by
        another trainer (the members of a seed ensemble share one); else it is loaded."""
        self.spec, self.on_event, self.should_stop = spec, on_event, should_stop
        training = spec.training
        self.device = pick_device(training.device)
        data_path = None if data_dir is None else Path(data_dir)
        if task is None:
            task = _to_device(load_task(spec.data, data_path), self.device)
        self.task = task
        self.classification = self.task.task == "classification"
        self.model = self._build_model()
        self.num_params = sum(p.numel() for p in self.model.parameters())
        self.loss_fn: nn.Module = nn.CrossEntropyLoss() if self.classification else nn.MSELoss()
        self.optimizer = _make_optimizer(spec, self.model)
        self.sampler = EpochSampler(
            spec, self.task, make_generator(training.seed, SAMPLING_STREAM), self.device
        )
        self.steps_per_epoch = self.sampler.steps_per_epoch
        epoch_steps = training.epochs * self.steps_per_epoch
        self.total_steps = min(epoch_steps, training.max_steps or epoch_steps)
        self.scheduler = make_scheduler(
            self.optimizer,
            spec.optimizer.schedule,
            base_lr=spec.optimizer.base.lr,
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
        )
        self.augment_generator = make_generator(training.seed, AUGMENT_STREAM, self.device)
        self.evaluator = Evaluator(spec, self.task, self.loss_fn, training.seed)
        self.autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=training.precision == "bf16"
        )
        self.step = 0
        self.grad_evals = 0.0
        self.train_seconds = 0.0
        self.measure_seconds = 0.0
        self.last_eval: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self.start_step = 0

    def _build_model(self) -> nn.Module:
        # Seeded right before the model is built: its initial weights depend on the seed only.
        seed_everything(self.spec.training.seed)
        model = build_model(self.spec.model, self.task.input_shape, self.task.num_outputs)
        return model.to(self.device)

    # --- the loop -------------------------------------------------------------

    def run(self) -> Finished:
        self.emit(
            Started(
                device=str(self.device),
                total_steps=self.total_steps,
                steps_per_epoch=self.steps_per_epoch,
                num_params=self.num_params,
                start_step=self.start_step,
            )
        )
        self.model.train()
        last_checkpoint = last_eval = last_measure = -1
        while self.step < self.total_steps:
            if self.should_stop():
                self.emit_checkpoint()
                return self.finish("stopped", f"stopped at step {self.step}")
            loss = self.train_step()
            if not math.isfinite(loss):
                return self.finish("diverged", f"diverged at step {self.step}: loss is {loss}")
            evaluate, measure = self.due()
            if evaluate or measure:
                self.run_evaluation(evaluate=evaluate, measure=measure)
                last_eval = self.step if evaluate else last_eval
                last_measure = self.step if measure else last_measure
            epoch_done = self.step % self.steps_per_epoch == 0
            epoch = self.step // self.steps_per_epoch
            if epoch_done and epoch % self.spec.training.checkpoint_every_epochs == 0:
                self.emit_checkpoint()
                last_checkpoint = self.step
        evaluate, measure = self.due_at_end(last_eval, last_measure)
        if evaluate or measure:
            self.run_evaluation(evaluate=evaluate, measure=measure)
        if last_checkpoint != self.step:
            self.emit_checkpoint()
        return self.finish("completed", "")

    def due(self, step: int | None = None) -> tuple[bool, bool]:
        """Whether the evaluation and the sharpness measures are due after `step` (this one).

        Each has its own cadence (`spec.evaluate`, `spec.measure`): a per-epoch
        test curve does not force a Hessian every epoch.
        """
        step = self.step if step is None else step
        evaluate = self.spec.evaluate.due(step, self.steps_per_epoch)
        measure = self.spec.measure.due(step, self.steps_per_epoch)
        return evaluate, measure and bool(self.evaluator.items)

    def due_at_end(
        self, last_eval: int, last_measure: int, step: int | None = None
    ) -> tuple[bool, bool]:
        """At the end, each runs once more unless it just ran at this step."""
        step = self.step if step is None else step
        return last_eval != step, bool(self.evaluator.items) and last_measure != step

    def train_step(self) -> float:
        """One optimizer step on the next batch; returns its loss (the first pass's)."""
        started = time.perf_counter()
        x, y, weights = self.next_batch()
        lr = self.optimizer.param_groups[0]["lr"]
        closure = self.make_closure(x, y, weights)
        with self.autocast, self.step_context():
            loss = self.after_optimizer_step(float(self.optimizer.step(closure)))
        project = getattr(self.model, "project_", None)
        if project is not None:  # a norm projection after each step (`project_norm`)
            project()
        self.scheduler.step()
        self.step += 1
        self.grad_evals += float(self.optimizer.last_grad_evals)
        self.train_seconds += time.perf_counter() - started
        if math.isfinite(loss) and self.step % self.spec.training.log_every_steps == 0:
            self.log_step(loss, lr, closure, y)
        return loss

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """This step's examples, augmented; a data-parallel rank takes its shard."""
        x, y, weights = self.sampler.next_batch(self.model, self.step)
        if self.task.augment is not None:
            x = self.task.augment(x, self.augment_generator)
        return x, y, weights

    def make_closure(
        self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None
    ) -> BatchClosure:
        return BatchClosure(self.model, self.loss_fn, x, y, weights)

    def step_context(self) -> AbstractContextManager[Any]:
        """Wraps the optimizer step (DDP's `no_sync` for data-parallel `local` SAM)."""
        return nullcontext()

    def after_optimizer_step(self, loss: float) -> float:
        """The step's loss as reported (data-parallel: averaged over ranks)."""
        return loss

    def log_step(self, loss: float, lr: float, closure: Any, y: torch.Tensor) -> None:
        values = {"train_loss_step": loss, "lr": lr, "grad_evals": self.grad_evals}
        if self.classification and closure.first_outputs is not None:
            predicted = closure.first_outputs.argmax(-1)
            values["train_acc_step"] = float((predicted == y).float().mean())
        rho = _current_rho(self.optimizer)
        if rho is not None:
            values["rho"] = rho
        self.emit(Metrics(self.step, self.epoch, values))
        self.emit_progress()

    def run_evaluation(
        self, evaluated: Evaluation | None = None, *, evaluate: bool = True, measure: bool = True
    ) -> None:
        """Evaluate (losses, accuracies) and/or measure (sharpness) off the training clock.

        `evaluated` is the evaluation already taken elsewhere (a seed ensemble takes
        every member's at once); the measures are then the only work left here.
        """
        started = time.perf_counter()
        measure = measure and bool(self.evaluator.items)
        if evaluated is not None and not measure:
            # Nothing left to run, so nothing draws: no need to save the generators.
            result, measured = evaluated, Evaluation()
        else:
            with preserved_global_rng():
                if evaluated is not None:
                    result = evaluated
                else:
                    result = self.evaluator.evaluate(self.model) if evaluate else Evaluation()
                measured = self.evaluator.measure(self.model) if measure else Evaluation()
        result.values.update(measured.values)
        result.extras.update(measured.extras)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.measure_seconds += time.perf_counter() - started
        self.track(result)
        self.emit(Metrics(self.step, self.epoch, result.values, result.extras))
        self.emit_progress()

    def track(self, result: Evaluation) -> None:
        self.last_eval.update(result.values)
        for split in ("test", "val"):
            acc, loss = f"{split}_acc", f"{split}_loss"
            if acc in result.values:
                best = self.best.get(f"best_{acc}", -math.inf)
                self.best[f"best_{acc}"] = max(best, result.values[acc])
            if loss in result.values:
                best = self.best.get(f"best_{loss}", math.inf)
                self.best[f"best_{loss}"] = min(best, result.values[loss])

    def finish(self, status: Status, message: str) -> Finished:
        finished = Finished(status=status, step=self.step, summary=self.summary(), message=message)
        self.emit(finished)
        return finished

    def summary(self) -> dict[str, float]:
        out = {f"final_{k}": v for k, v in self.last_eval.items() if k in _FINAL_NAMES}
        out.update({k: v for k, v in self.last_eval.items() if k not in _FINAL_NAMES})
        out.update(self.best)
        out.update(
            steps=float(self.step),
            epochs=self.epoch,
            grad_evals=self.grad_evals,
            train_seconds=self.train_seconds,
            measure_seconds=self.measure_seconds,
            steps_per_second=self.step / self.train_seconds if self.train_seconds > 0 else 0.0,
            num_params=float(self.num_params),
        )
        # A diverged run's last evaluation may be inf or nan, which JSON cannot hold.
        return {k: v for k, v in out.items() if math.isfinite(v)}

    # --- events ---------------------------------------------------------------

    @property
    def epoch(self) -> float:
        return self.step / self.steps_per_epoch

    def emit(self, event: Event) -> None:
        self.on_event(event)

    def emit_progress(self) -> None:
        self.emit(
            Progress(
                step=self.step,
                epoch=self.epoch,
                fraction=self.step / self.total_steps,
                grad_evals=round(self.grad_evals),
                train_seconds=self.train_seconds,
            )
        )

    def emit_checkpoint(self, global_rng: dict[str, Any] | None = None) -> None:
        """`global_rng`: the global generators' state to record (a seed ensemble keeps
        each member's); by default the process's own."""
        self.emit(Checkpoint(self.step, self.epoch, checkpoint.snapshot(self.state(global_rng))))

    # --- checkpoint state -----------------------------------------------------

    def state(self, global_rng: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "format_version": checkpoint.FORMAT_VERSION,
            "spec_hash": self.spec.hash(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {
                "global": global_rng_state() if global_rng is None else global_rng,
                "augment": self.augment_generator.get_state(),
            },
            "sampler": self.sampler.state(),
            "counters": {"step": self.step, "grad_evals": self.grad_evals},
            "trackers": {"last_eval": dict(self.last_eval), "best": dict(self.best)},
            "clock": {"train_seconds": self.train_seconds, "measure_seconds": self.measure_seconds},
            "warm_starts": self.evaluator.warm_state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        checkpoint.check_resume_state(state, self.spec.hash())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state(state["sampler"])
        self.step = self.start_step = int(state["counters"]["step"])
        self.grad_evals = float(state["counters"]["grad_evals"])
        self.last_eval = dict(state["trackers"]["last_eval"])
        self.best = dict(state["trackers"]["best"])
        self.train_seconds = float(state["clock"]["train_seconds"])
        self.measure_seconds = float(state["clock"]["measure_seconds"])
        self.augment_generator.set_state(state["rng"]["augment"])
        set_global_rng_state(state["rng"]["global"])
        # Optional: checkpoints taken before warm starts were kept lack it (a cold start).
        self.evaluator.load_warm_state(state.get("warm_starts", {}))


_FINAL_NAMES = ("train_loss", "test_loss", "train_acc", "test_acc", "val_loss", "val_acc")


def _make_optimizer(spec: JobSpec, model: nn.Module) -> SharpnessAware:
    o = spec.optimizer
    rule_params = o.model_dump(exclude={"name", "label", "base", "schedule"})
    return create_optimizer(
        o.name,
        model,
        base=o.base.model_dump(),
        max_grad_norm=spec.training.grad_clip,
        seed=stream_seed(spec.training.seed, OPTIMIZER_STREAM),
        **rule_params,
    )


def _current_rho(optimizer: torch.optim.Optimizer) -> float | None:
    group = optimizer.param_groups[0]
    rho = group.get("rho")
    return None if rho is None else float(rho)


def _to_device(task: Any, device: torch.device) -> Any:
    """The task's tensors on `device`, regression targets shaped like the model's outputs."""
    for name in ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val"):
        if getattr(task, name) is None:
            continue
        tensor = getattr(task, name).to(device)
        if task.task == "regression" and name.startswith("y") and tensor.dim() == 1:
            tensor = tensor.unsqueeze(1)
        setattr(task, name, tensor)
    return task
