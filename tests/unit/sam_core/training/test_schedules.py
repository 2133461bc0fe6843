"""Learning-rate schedules: warm-up, then the named decay over the remaining steps."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sam_core.spec.optimizers import ScheduleParams
from sam_core.training.schedules import lr_factor, make_scheduler


def _factors(total: int = 100, steps_per_epoch: int = 10, **schedule: object) -> list[float]:
    factor = lr_factor(
        ScheduleParams.model_validate(schedule),
        base_lr=0.1,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
    )
    return [factor(t) for t in range(total)]


def test_constant_is_one_throughout() -> None:
    assert set(_factors(name="constant")) == {1.0}


def test_warmup_rises_linearly_to_one() -> None:
    factors = _factors(name="constant", warmup_steps=4)
    assert factors[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_cosine_falls_from_one_to_the_floor() -> None:
    factors = _factors(name="cosine", min_lr=0.01)
    assert factors[0] == 1.0
    assert factors[50] == pytest.approx(0.1 + 0.9 * 0.5)
    assert all(a >= b for a, b in itertools.pairwise(factors))
    assert lr_factor(
        ScheduleParams(name="cosine", min_lr=0.01), base_lr=0.1, total_steps=100, steps_per_epoch=1
    )(100) == pytest.approx(0.1)


def test_linear_falls_in_equal_steps() -> None:
    factors = _factors(name="linear")
    assert factors[0] == 1.0 and factors[50] == pytest.approx(0.5)


def test_step_decays_by_gamma_every_step_size_epochs() -> None:
    factors = _factors(name="step", step_size_epochs=3, gamma=0.5)
    assert factors[29] == 1.0 and factors[30] == 0.5 and factors[60] == 0.25


def test_diminishing_is_one_over_one_plus_t_to_the_power() -> None:
    factors = _factors(name="diminishing", power=0.5)
    assert factors[3] == pytest.approx(1 / math.sqrt(4))


def test_scheduler_sets_the_optimizer_learning_rate_each_step() -> None:
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scheduler = make_scheduler(
        optimizer, ScheduleParams(name="linear"), base_lr=0.1, total_steps=10, steps_per_epoch=5
    )
    rates = []
    for _ in range(3):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.1, 0.09, 0.08])
