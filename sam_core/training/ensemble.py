"""Seed ensembles: jobs that differ only in seed and scalar hyperparameters, trained as one.

`train_ensemble(specs, on_event, should_stop)` trains `M` jobs on a small model
as one vectorised model (`sam_core.training.stacked`). Each member is a solo
`Trainer` that never steps itself: it is built exactly as `train(spec)` builds
it (global RNG seeded before `build_model`, its own sampler stream), so it
starts from the same weights and draws the same batches, and it does what
the solo loop does between steps — logging, evaluations and measures, checkpoints,
the summary — after its slice of the stack is copied back into its model.
So each member's events, checkpoints and results are those of its solo run,
up to float32 rounding (a test bounds it by the step count and width), but for
its clocks: they are the ensemble's, shared by every member, and its summary
says so with `ensemble_size` (the comparison leaves such clocks out). A member can stop, or
diverge, alone: it finishes and leaves the stack, the others go on.

`can_ensemble(specs)` (from `sam_core.spec.ensemble`, torch-free) says whether a
group of specs can be trained this way, and if not, why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from sam_core.spec import JobSpec
from sam_core.spec.ensemble import can_ensemble
from sam_core.training.events import Event, Finished, Started
from sam_core.training.loop import Status, Trainer
from sam_core.training.rng import global_rng_state, set_global_rng_state
from sam_core.training.stacked import Layout, StackedModel, StackedRule

# Above this many parameters a member fills the device alone: stacking gains nothing.
MAX_MEMBER_PARAMS = 2_000_000


def train_ensemble(
    specs: Sequence[JobSpec],
    on_event: Callable[[int, Event], None],
    should_stop: Callable[[int], bool] = lambda i: False,
    *,
    data_dir: str | Path | None = None,
) -> list[Finished]:
    """Train `specs` together; report member `i`'s events as `on_event(i, event)`.

    `should_stop(i)` is asked before every step for each member still training; a
    true answer ends that member alone with a final checkpoint and status
    "stopped". Returns each member's `Finished`, in the order of `specs`.
    Raises ValueError when `can_ensemble(specs)` is false.
    """
    ok, reason = can_ensemble(specs)
    if not ok:
        raise ValueError(f"cannot train these jobs as one ensemble: {reason}")
    return Ensemble(specs, on_event, should_stop, data_dir=data_dir).run()


class Ensemble:
    """The members' solo trainers, their stacked parameters, and the loop over both."""

    def __init__(
        self,
        specs: Sequence[JobSpec],
        on_event: Callable[[int, Event], None],
        should_stop: Callable[[int], bool],
        *,
        data_dir: str | Path | None = None,
    ) -> None:
        self.should_stop = should_stop
        self.members: list[Trainer] = []
        self.rng_states: list[dict[str, Any]] = []
        for i, spec in enumerate(specs):
            emit = _member_emitter(on_event, i, len(specs))
            # One copy of the data for all: the specs' data blocks are equal.
            task = self.members[0].task if self.members else None
            member = Trainer(spec, emit, lambda: False, data_dir=data_dir, task=task)
            self.members.append(member)
            # The global RNG as the solo run leaves it after building its model.
            self.rng_states.append(global_rng_state())
        first = self.members[0]
        if first.num_params > MAX_MEMBER_PARAMS:
            raise ValueError(
                f"a member has {first.num_params} parameters; ensembles are for models of at "
                f"most {MAX_MEMBER_PARAMS}, where one member leaves the device idle"
            )
        self.spec, self.task = first.spec, first.task
        self.layout = Layout(first.model)
        self.member_params = [
            [dict(m.model.named_parameters())[n] for n in self.layout.names] for m in self.members
        ]
        self.shared_batch = first.sampler.sampling == "full" and self.task.augment is None
        self.net = StackedModel(first.model, first.loss_fn, self.shared_batch, self.layout)
        self.params = self.layout.stack([m.model for m in self.members])  # [M, P]
        self.rule = StackedRule(specs, self.params, self.layout.sizes)
        self.active = list(range(len(specs)))  # member of each stack position
        self.grad_evals = [0.0] * len(specs)
        self.finished: list[Finished | None] = [None] * len(specs)
        self.step = 0
        self.train_seconds = 0.0

    # --- the loop -------------------------------------------------------------

    def run(self) -> list[Finished]:
        for m in self.members:
            m.emit(
                Started(
                    device=str(m.device),
                    total_steps=m.total_steps,
                    steps_per_epoch=m.steps_per_epoch,
                    num_params=m.num_params,
                )
            )
        first = self.members[0]
        last_checkpoint = last_eval = last_measure = -1
        while self.step < first.total_steps and self.active:
            self.stop_requested()
            if not self.active:
                break
            losses = self.train_step()
            self.end_diverged(losses)
            evaluate, measure = first.due(self.step)
            if (evaluate or measure) and self.active:
                self.evaluate(evaluate=evaluate, measure=measure)
                last_eval = self.step if evaluate else last_eval
                last_measure = self.step if measure else last_measure
            epoch_done = self.step % first.steps_per_epoch == 0
            epoch = self.step // first.steps_per_epoch
            if epoch_done and epoch % self.spec.training.checkpoint_every_epochs == 0:
                self.each_active(self.checkpoint)
                last_checkpoint = self.step
        evaluate, measure = first.due_at_end(last_eval, last_measure, self.step)
        if (evaluate or measure) and self.active:
            self.evaluate(evaluate=evaluate, measure=measure)
        if last_checkpoint != self.step:
            self.each_active(self.checkpoint)
        for position in range(len(self.active)):
            self.finish(position, "completed", "")
        return [f for f in self.finished if f is not None]

    def train_step(self) -> list[float]:
        """One step of every active member; returns their losses (the first pass's)."""
        started = time.perf_counter()
        x, y, weights = self.next_batches()
        lrs = [self.members[i].scheduler.lr_lambdas[0](self.step) for i in self.active]
        lrs = [lr0 * f for lr0, f in zip(self.rule.lr0, lrs, strict=True)]
        losses, outputs, grad = self.net.gradients(self.params, x, y, weights)
        rhos = self.rule.rho_at(lrs) if self.rule.perturbs else [0.0] * len(lrs)
        if any(rho > 0.0 for rho in rhos):
            rho = torch.tensor(rhos, dtype=torch.float32, device=losses.device)
            perturbed = self.rule.perturbed(self.params, grad, rho)
            _, _, grad = self.net.gradients(perturbed, x, y, weights)
        self.rule.apply(self.params, grad, lrs)
        self.step += 1
        for position, i in enumerate(self.active):
            self.grad_evals[i] += 2.0 if rhos[position] > 0.0 else 1.0
        self.train_seconds += time.perf_counter() - started
        values = losses.tolist()
        if self.step % self.spec.training.log_every_steps == 0:
            self.log_step(values, lrs, rhos, outputs, y)
        return values

    def next_batches(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Each active member's batch from its own sampler, stacked `[M, B, …]`."""
        x_train, y_train = self.task.x_train, self.task.y_train
        # Every member's sampler draws, so that each one's state is its solo run's.
        picks = [self.member_indices(position) for position in range(len(self.active))]
        if self.shared_batch:  # full batch: every member's batch is the training set
            return x_train[picks[0][0]], y_train[picks[0][0]], None
        index = torch.stack([p[0] for p in picks])
        x, y = x_train[index], y_train[index]
        if self.task.augment is not None:
            generators = [self.members[i].augment_generator for i in self.active]
            x = torch.stack([self.task.augment(xi, g) for xi, g in zip(x, generators, strict=True)])
        weights = [w for _, w in picks if w is not None]
        return x, y, torch.stack(weights) if weights else None

    def member_indices(self, position: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        member = self.members[self.active[position]]
        refresh = member.sampler.refresh_scores and self.step % member.steps_per_epoch == 0
        if refresh:  # importance scores are taken from the member's current weights
            self.sync(position)
        return member.sampler.next_indices(member.model, self.step)

    def log_step(
        self,
        losses: list[float],
        lrs: list[float],
        rhos: list[float],
        outputs: torch.Tensor,
        y: torch.Tensor,
    ) -> None:
        for position, i in enumerate(self.active):
            if not math.isfinite(losses[position]):
                continue
            member = self.members[i]
            self.sync_counters(i)
            if "rho" in member.optimizer.param_groups[0]:
                member.optimizer.param_groups[0]["rho"] = rhos[position]
            first_pass = SimpleNamespace(first_outputs=outputs[position])
            member_y = y if self.shared_batch else y[position]
            member.log_step(losses[position], lrs[position], first_pass, member_y)

    # --- members leaving the stack ----------------------------------------------

    def stop_requested(self) -> None:
        stopping = [p for p, i in enumerate(self.active) if self.should_stop(i)]
        for position in stopping:
            self.checkpoint(position)
            self.finish(position, "stopped", f"stopped at step {self.step}")
        self.drop(stopping)

    def end_diverged(self, losses: list[float]) -> None:
        diverged = [p for p, loss in enumerate(losses) if not math.isfinite(loss)]
        for position in diverged:
            self.sync(position)
            message = f"diverged at step {self.step}: loss is {losses[position]}"
            self.finish(position, "diverged", message)
        self.drop(diverged)

    def finish(self, position: int, status: Status, message: str) -> None:
        i = self.active[position]
        self.sync_counters(i)
        self.finished[i] = self.members[i].finish(status, message)

    def drop(self, positions: list[int]) -> None:
        """Take the members at `positions` out of the stack."""
        if not positions:
            return
        keep = [p for p in range(len(self.active)) if p not in positions]
        index = torch.tensor(keep, dtype=torch.long, device=self.params.device)
        self.params = self.params.index_select(0, index)
        self.rule.keep(index, keep)
        self.active = [self.active[p] for p in keep]

    # --- a member's solo view -----------------------------------------------------------

    def each_active(self, action: Callable[[int], None]) -> None:
        for position in range(len(self.active)):
            action(position)

    def evaluate(self, *, evaluate: bool = True, measure: bool = True) -> None:
        """Every member's losses, accuracies and teacher error at once; measures per member.

        `evaluate` and `measure` say which are due (each has its own cadence).
        Each member's evaluation time is that of the whole evaluation, as its
        training time is that of the whole ensemble's steps.
        """
        if evaluate:
            started = time.perf_counter()
            evaluator = self.members[self.active[0]].evaluator
            train_loss, train_acc, _ = self.net.evaluate(self.params, evaluator.train_batches)
            test_loss, test_acc, errors = self.net.evaluate(
                self.params, evaluator.test_batches, self.task.teacher
            )
            if evaluator.val_batches is not None:
                val_loss, val_acc, _ = self.net.evaluate(self.params, evaluator.val_batches)
            seconds = time.perf_counter() - started
        for position, i in enumerate(self.active):
            member = self.members[i]
            if measure and member.evaluator.items:  # measures run on the member's own model
                self.sync(position)
                # Measures drawing from the global generators see the solo run's state.
                set_global_rng_state(self.rng_states[i])
            self.sync_counters(i)
            evaluated = None
            if evaluate:
                member.measure_seconds += seconds
                train = {"loss": train_loss[position], "accuracy": train_acc[position]}
                test = {"loss": test_loss[position], "accuracy": test_acc[position]}
                error = None if errors is None else errors[position]
                val = None
                if evaluator.val_batches is not None:
                    val = {"loss": val_loss[position], "accuracy": val_acc[position]}
                evaluated = member.evaluator.evaluation(train, test, error, val)
            member.run_evaluation(evaluated, evaluate=evaluate, measure=measure)

    def checkpoint(self, position: int) -> None:
        i = self.active[position]
        self.sync(position)
        member = self.members[i]
        member.optimizer.state.clear()
        state = self.rule.member_state(position, self.member_params[i], self.layout)
        member.optimizer.state.update(state)
        member.optimizer.steps = self.rule.steps
        _advance_scheduler(member.scheduler, member.optimizer, self.step)
        member.emit_checkpoint(self.rng_states[i])  # the global generators as the solo run's

    def sync(self, position: int) -> None:
        """Copy the member's slice of the stack into its own model."""
        i = self.active[position]
        with torch.no_grad():
            slices = self.layout.split(self.params[position])
            for p, values in zip(self.member_params[i], slices, strict=True):
                p.copy_(values)
        self.sync_counters(i)

    def sync_counters(self, i: int) -> None:
        member = self.members[i]
        member.step = self.step
        member.grad_evals = self.grad_evals[i]
        member.train_seconds = self.train_seconds


def _advance_scheduler(
    scheduler: torch.optim.lr_scheduler.LambdaLR, optimizer: torch.optim.Optimizer, step: int
) -> None:
    """Put the member's scheduler where `step` calls of `scheduler.step()` would have."""
    if scheduler.last_epoch == step:
        return
    scheduler.last_epoch = step - 1
    scheduler._step_count = step  # torch counts the construction as a step
    optimizer._opt_called = True  # type: ignore[attr-defined]  # no warning: it did step
    scheduler.step()


def _member_emitter(
    on_event: Callable[[int, Event], None], i: int, size: int
) -> Callable[[Event], None]:
    """Member `i`'s events; its summary says `ensemble_size`, since its clocks
    (train_seconds, measure_seconds, steps_per_second) are the whole ensemble's."""

    def emit(event: Event) -> None:
        if isinstance(event, Finished):
            event.summary["ensemble_size"] = float(size)
        on_event(i, event)

    return emit
