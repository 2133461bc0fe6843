"""Behaviour every rule shares, checked once over the whole registry."""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch
from torch import nn

from sam_core.optim import create_optimizer, list_optimizers
from sam_core.spec.optimizers import RULES
from tests.tolerance import float_tolerance
from tests.unit.sam_core.optim.nets import RULE_KWARGS, BnNet, batches, clone, closure

ALL = list_optimizers()
PERTURBING = [name for name in ALL if "rho" in RULES[name].params.model_fields]
SGD = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}
ADAMW = {"name": "adamw", "lr": 0.01, "weight_decay": 0.01}
BN_SHAPE = (2, 6, 6)


def make(name: str, model: nn.Module, base: dict = SGD, **extra) -> torch.optim.Optimizer:
    kwargs = {**RULE_KWARGS.get(name, {}), **extra}
    return create_optimizer(name, model, base=base, seed=0, **kwargs)


def run(opt, model: nn.Module, data) -> list[torch.Tensor]:
    for x, y in data:
        opt.step(closure(model, x, y))
    return [p.detach().clone() for p in model.parameters()]


def test_every_rule_of_the_contract_is_registered():
    assert set(ALL) == set(RULES)


@pytest.mark.parametrize("base", [SGD, ADAMW], ids=["sgd", "adamw"])
@pytest.mark.parametrize("name", ALL)
def test_rho_zero_equals_the_base_optimizer_exactly(name, base, bn_net):
    data = batches(3, 8, BN_SHAPE)
    reference = clone(bn_net)
    plain = (torch.optim.SGD if base["name"] == "sgd" else torch.optim.AdamW)(
        reference.parameters(), **{k: v for k, v in base.items() if k != "name"}
    )
    for x, y in data:
        plain.zero_grad()
        nn.CrossEntropyLoss()(reference(x), y).backward()
        plain.step()
    extra = {"rho": 0.0} if name in PERTURBING else {}
    got = run(make(name, bn_net, base, **extra), bn_net, data)
    for p, q in zip(got, reference.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip_continues_bit_for_bit(name, bn_net):
    data = batches(6, 8, BN_SHAPE)
    opt = make(name, bn_net)
    run(opt, bn_net, data[:3])
    saved_state, saved_model = copy.deepcopy(opt.state_dict()), copy.deepcopy(bn_net.state_dict())
    expected = run(opt, bn_net, data[3:])

    resumed_model = BnNet()
    resumed_model.load_state_dict(saved_model)
    # A different seed: only the saved generator state can reproduce RSAM's and ESAM's draws.
    resumed = create_optimizer(name, resumed_model, base=SGD, seed=123, **RULE_KWARGS.get(name, {}))
    resumed.load_state_dict(saved_state)
    got = run(resumed, resumed_model, data[3:])
    for p, q in zip(got, expected, strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", ["vasso", "fsam", "looksam", "rsam", "esam"])
def test_state_dict_holds_rule_state_but_no_transient_copies(name, bn_net):
    opt = make(name, bn_net)
    run(opt, bn_net, batches(2, 8, BN_SHAPE))
    rule = opt.state_dict()["rule"]
    assert rule["steps"] == 2
    expected = {"vasso": {"d"}, "fsam": {"m"}, "looksam": {"g_v"}}.get(name, set())
    assert set(rule["buffers"]) == expected
    assert ("generator" in rule) == (name in ("rsam", "esam"))


def _bad_values(name: str):
    """(field, bad value) for every bounded numeric field of the rule, and an unknown field."""
    for field, info in RULES[name].params.model_fields.items():
        for bound in info.metadata:
            for attr, sign in (("ge", -1), ("gt", -1), ("le", 1), ("lt", 1)):
                limit = getattr(bound, attr, None)
                if limit is not None:
                    step = 7 if info.annotation is int else 7.5
                    yield field, limit + sign * step
    yield "no_such_field", 1


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [(name, field, value) for name in ALL for field, value in _bad_values(name)],
)
def test_bad_hyperparameter_raises_naming_field_and_value(name, field, value, bn_net):
    with pytest.raises(ValueError, match=re.escape(f"{field}={value!r}")):
        create_optimizer(name, bn_net, **{field: value})


def test_bad_base_optimizer_value_is_named(bn_net):
    with pytest.raises(ValueError, match=r"base\.lr=-1\.0"):
        create_optimizer("sam", bn_net, base={"name": "sgd", "lr": -1.0})


def test_unknown_rule_lists_the_known_ones(bn_net):
    with pytest.raises(ValueError, match=r"unknown optimizer 'sharp'.*sam"):
        create_optimizer("sharp", bn_net)


@pytest.mark.parametrize("name", ALL)
def test_batchnorm_statistics_advance_once_per_step(name, bn_net):
    ((x, y),) = batches(1, 8, BN_SHAPE)
    plain = clone(bn_net)
    plain(x)  # one forward in train mode at the same weights
    extra = {"m": 8} if name == "msam" else {"sigma": 0.0} if name == "rsam" else {}
    make(name, bn_net, **extra).step(closure(bn_net, x, y))
    bn, expected = bn_net.body[1], plain.body[1]
    assert bn.num_batches_tracked.item() == 1
    assert torch.equal(bn.running_mean, expected.running_mean)
    assert torch.equal(bn.running_var, expected.running_var)


def test_msam_keeps_the_first_chunks_batchnorm_update(bn_net):
    ((x, y),) = batches(1, 8, BN_SHAPE)
    plain = clone(bn_net)
    plain(x[:4])
    make("msam", bn_net, m=4).step(closure(bn_net, x, y))
    assert bn_net.body[1].num_batches_tracked.item() == 1
    assert torch.equal(bn_net.body[1].running_mean, plain.body[1].running_mean)


@pytest.mark.parametrize("name", ALL)
def test_every_pass_sees_the_steps_batch(name, bn_net):
    ((x, y),) = batches(1, 8, BN_SHAPE)
    seen: list[torch.Tensor] = []
    bn_net.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    make(name, bn_net).step(closure(bn_net, x, y))
    expected_passes = 1 if name in ("sgd", "gd") else 2
    assert len(seen) >= expected_passes
    rows = {tuple(r.flatten().tolist()) for r in x}
    for inputs in seen:  # the whole batch, or (ESAM, m-SAM) some of its examples
        assert {tuple(r.flatten().tolist()) for r in inputs} <= rows
    if name not in ("esam", "msam"):
        assert all(torch.equal(inputs, x) for inputs in seen)


def _first_update(name: str, model: nn.Module, weight_decay: float, **extra) -> list[torch.Tensor]:
    base = {"name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": weight_decay}
    ((x, y),) = batches(1, 8, BN_SHAPE)
    before = [p.detach().clone() for p in model.parameters()]
    make(name, model, base, **extra).step(closure(model, x, y))
    return [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]


@pytest.mark.parametrize("name", PERTURBING)
def test_weight_decay_enters_epsilon_only_when_asked(name, bn_net):
    w0 = [p.detach().clone() for p in bn_net.parameters()]
    without = _first_update(name, clone(bn_net), 0.0)
    decayed = _first_update(name, clone(bn_net), 0.5)
    # Same ε, so the two updates differ by the decay term −lr·wd·w only.
    # Each update rounds at the size of w in float32, and a − b cancels: a few roundings of |w|.
    tol = float_tolerance(torch.float32, ops=4) * max(float(w.abs().max()) for w in w0)
    for a, b, w in zip(decayed, without, w0, strict=True):
        torch.testing.assert_close(a - b, -0.1 * 0.5 * w, atol=tol, rtol=0)
    in_loss = _first_update(name, clone(bn_net), 0.5, perturb_weight_decay=True)
    gap = max((a - b + 0.05 * w).abs().max() for a, b, w in zip(in_loss, without, w0, strict=True))
    assert gap > 1e-5


@pytest.mark.parametrize("name", ALL)
def test_lr_scheduler_drives_the_wrapper_without_warnings(name, bn_net):
    opt = make(name, bn_net)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, y in batches(2, 8, BN_SHAPE):
            opt.step(closure(bn_net, x, y))
            scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.025)
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.025)


def test_manual_two_pass_with_scheduler_gives_no_warning(bn_net):
    opt = make("sam", bn_net)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    ((x, y),) = batches(1, 8, BN_SHAPE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.CrossEntropyLoss()(bn_net(x), y).backward()
        opt.first_step()
        nn.CrossEntropyLoss()(bn_net(x), y).backward()
        opt.second_step()
        scheduler.step()


@pytest.mark.parametrize("name", ["sam", "esam", "msam", "looksam"])
def test_bf16_autocast_runs_through_the_closure(name, bn_net):
    opt = make(name, bn_net)
    before = [p.detach().clone() for p in bn_net.parameters()]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for x, y in batches(2, 8, BN_SHAPE):
            loss = opt.step(closure(bn_net, x, y))
    assert torch.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in bn_net.parameters())
    assert any(not torch.equal(p, b) for p, b in zip(bn_net.parameters(), before, strict=True))


@pytest.mark.parametrize("name", ALL)
def test_clipping_bounds_the_final_gradient(name, bn_net):
    base = {"name": "sgd", "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0}
    opt = create_optimizer(name, bn_net, base=base, max_grad_norm=1e-3, seed=0,
                           **RULE_KWARGS.get(name, {}))  # fmt: skip
    before = [p.detach().clone() for p in bn_net.parameters()]
    ((x, y),) = batches(1, 8, BN_SHAPE)
    opt.step(closure(bn_net, x, y))
    params = list(bn_net.parameters())
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(params, before, strict=True)])
    # The clip scales by max_norm/‖g‖ with ‖g‖ a float32 sum over every parameter.
    assert moved.norm() <= 1e-3 * (1 + float_tolerance(torch.float32, ops=len(moved)))
