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


def test_khanh_diminish_schedules_step_per_epoch_with_the_papers_values() -> None:
    # Three steps per epoch, 40 epochs; factors of the base lr 0.1.
    def per_epoch(name: str) -> list[float]:
        factors = _factors(total=120, steps_per_epoch=3, name=name)
        assert all(factors[3 * k] == factors[3 * k + 1] == factors[3 * k + 2] for k in range(40))
        return factors[::3]

    assert per_epoch("diminish1")[:4] == [1.0, 1 / 2, 1 / 3, 1 / 4]
    assert per_epoch("diminish2")[3] == pytest.approx(4**-0.5001, rel=1e-15)
    # Diminish 3, by hand: 0.1/(m ln m) with m = 3 for epochs 0–4, 4 for 5–9, …, 10 at 35.
    lrs = [0.1 * f for f in per_epoch("diminish3")]
    assert lrs[0] == lrs[4] == pytest.approx(0.1 / (3 * 1.0986122886681098), rel=1e-15)
    assert lrs[5] == pytest.approx(0.1 / (4 * 1.3862943611198906), rel=1e-15)
    assert lrs[35] == pytest.approx(0.1 / (10 * 2.302585092994046), rel=1e-15)
    assert len(set(lrs)) == 8


def test_unified_decreasing_steps_are_min_of_gamma_and_the_papers_bound() -> None:
    mu, gamma = 2.0, 0.1
    factor = lr_factor(
        ScheduleParams(name="unified_decreasing", mu=mu),
        base_lr=gamma,
        total_steps=1000,
        steps_per_epoch=1,
    )
    for k in (0, 1, 5, 9, 10, 11, 50, 999):
        expected = min(gamma, (2 * k + 1) / ((k + 1) ** 2 * mu))
        assert gamma * factor(k) == pytest.approx(expected, rel=1e-14)
    assert gamma * factor(0) == 0.1 and gamma * factor(999) < 0.001


def test_rho_schedules_of_their_own() -> None:
    from sam_core.spec.optimizers import SamParams

    power = SamParams(rho=0.2, rho_schedule="power", rho_power=0.5)
    assert [power.rho_at(t, 1.0) for t in (0, 3, 15)] == [0.2, 0.1, 0.05]
    unified = SamParams(rho=0.25, rho_schedule="unified")
    assert [unified.rho_at(t, 1.0) for t in (0, 1, 2, 10)] == [0.25, 0.25, 0.2, 1 / 21]
    assert SamParams(rho=0.2, rho_schedule="lr").rho_at(7, 0.5) == 0.1
    assert SamParams(rho=0.2).rho_at(7, 0.5) == 0.2
