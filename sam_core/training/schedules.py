"""Learning-rate schedules as a `LambdaLR` factor of the base learning rate.

The factor is a plain function of the step `t` (the number of steps already taken), so
the scheduler's `state_dict` holds only numbers and a resumed run gets the same rates.
Warm-up is linear from `1/warmup_steps` to 1 over the first `warmup_steps` steps; the
decay named by the schedule then runs over the remaining steps. Khanh et al. (2024)'s
`diminish1/2/3` are functions of the epoch k = ⌊t / steps_per_epoch⌋ (they step their
schedules per epoch); `unified_decreasing` (Oikonomou & Loizou 2025) of the step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from sam_core.spec.optimizers import ScheduleParams


def diminish3_m(epoch: int) -> int:
    """m of Diminish 3 at epoch k (from 0): 3, raised by one every 5 epochs."""
    return 3 + epoch // 5


# Khanh et al. (2024)'s per-epoch schedules, as factors of the base lr at epoch k.
KHANH: dict[str, Callable[[int], float]] = {
    "diminish1": lambda k: 1.0 / (k + 1),
    "diminish2": lambda k: 1.0 / (k + 1) ** 0.5001,
    "diminish3": lambda k: 1.0 / (diminish3_m(k) * math.log(diminish3_m(k))),
}


def lr_factor(
    schedule: ScheduleParams, *, base_lr: float, total_steps: int, steps_per_epoch: int
) -> Callable[[int], float]:
    """The multiplier of `base_lr` at step `t` for `schedule`."""
    warmup = schedule.warmup_steps
    floor = min(schedule.min_lr / base_lr, 1.0)
    decay_steps = max(total_steps - warmup, 1)

    def decay(t: int) -> float:
        progress = min(t / decay_steps, 1.0)
        if schedule.name == "cosine":
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if schedule.name == "linear":
            return floor + (1.0 - floor) * (1.0 - progress)
        if schedule.name == "step":
            epochs_done = (t + warmup) // steps_per_epoch
            return schedule.gamma ** (epochs_done // schedule.step_size_epochs)
        if schedule.name == "diminishing":
            return 1.0 / (1.0 + t) ** schedule.power
        if schedule.name == "unified_decreasing":
            return min(1.0, (2 * t + 1) / ((t + 1) ** 2 * schedule.mu * base_lr))
        if schedule.name in KHANH:
            return KHANH[schedule.name]((t + warmup) // steps_per_epoch)
        return 1.0

    def factor(t: int) -> float:
        if t < warmup:
            return (t + 1) / warmup
        return decay(t - warmup)

    return factor


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: ScheduleParams,
    *,
    base_lr: float,
    total_steps: int,
    steps_per_epoch: int,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` on `optimizer`'s parameter groups, stepped once per training step."""
    factor = lr_factor(
        schedule, base_lr=base_lr, total_steps=total_steps, steps_per_epoch=steps_per_epoch
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
