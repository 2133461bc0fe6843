"""The two-layer family of Wen, Li & Ma (2023) against hand computations, and the toy."""

from __future__ import annotations

import math

import pytest
import torch

from sam_core.models import build_model
from sam_core.models.toy import f1, f2, toy_minimizers

D, WIDTH = 5, 7


def net(**params: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model({"name": "two_layer_relu", "width": WIDTH, **params}, (D,), 1)
    return model.double()


def by_hand(model: torch.nn.Module, x: torch.Tensor, norm: str) -> torch.Tensor:
    """f(x) example by example with plain loops over units (no batched tensor algebra)."""
    w1 = model.hidden.weight.tolist()
    b1 = model.hidden.bias.tolist() if model.hidden.bias is not None else [0.0] * WIDTH
    w2 = model.output.tolist()[0]
    rows = x.tolist()
    hidden = [
        [max(0.0, sum(w1[j][k] * row[k] for k in range(D)) + b1[j]) for j in range(WIDTH)]
        for row in rows
    ]
    if norm == "sim_bn":
        gamma = model.gamma.tolist()
        rms = [math.sqrt(sum(h[j] ** 2 for h in hidden) / len(hidden)) for j in range(WIDTH)]
        hidden = [[gamma[j] * h[j] / rms[j] for j in range(WIDTH)] for h in hidden]
    if norm == "sim_ln":
        hidden = [[v / math.sqrt(sum(u * u for u in h)) for v in h] for h in hidden]
    return torch.tensor(
        [[sum(w2[j] * h[j] for j in range(WIDTH))] for h in hidden], dtype=torch.float64
    )


@pytest.mark.parametrize("norm", ["none", "sim_bn", "sim_ln"])
@pytest.mark.parametrize("first_bias", [False, True])
def test_forward_matches_the_hand_computation(norm, first_bias):
    model = net(norm=norm, first_bias=first_bias, init="pytorch")
    if model.gamma is not None:
        with torch.no_grad():
            model.gamma.copy_(torch.linspace(0.5, 2.0, WIDTH, dtype=torch.float64))
    x = torch.randn(12, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(model(x), by_hand(model, x, norm), rtol=1e-12, atol=1e-12)


def test_no_output_bias_and_first_bias_only_when_asked():
    names = {n for n, _ in net(first_bias=True).named_parameters()}
    assert names == {"hidden.weight", "hidden.bias", "output"}
    assert {n for n, _ in net().named_parameters()} == {"hidden.weight", "output"}
    assert "gamma" in dict(net(norm="sim_bn").named_parameters())


def test_pytorch_init_is_nn_linear_default_and_mean_field_is_plus_minus_one_over_width():
    torch.manual_seed(0)
    reference = torch.nn.Linear(D, WIDTH, bias=False), torch.nn.Linear(WIDTH, 1, bias=False)
    model = net(init="pytorch")
    assert torch.equal(model.hidden.weight.float(), reference[0].weight)
    assert torch.equal(model.output.float(), reference[1].weight)
    signs = [1.0 if j % 2 == 0 else -1.0 for j in range(WIDTH)]
    assert torch.equal(net().output.flatten().float(), torch.tensor(signs) / WIDTH)


def test_softplus_activation():
    model = net(activation="softplus")
    x = torch.randn(3, D, dtype=torch.float64)
    expected = torch.nn.functional.softplus(x @ model.hidden.weight.T) @ model.output.T
    torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)


def test_norm_projection_fixes_the_first_layer_norm_at_build_and_after_changes():
    model = net(first_bias=True, project_norm=10.0)

    def first_norm() -> float:
        return math.sqrt(sum(float(p.detach().pow(2).sum()) for p in model.first_layer()))

    assert first_norm() == pytest.approx(10.0, rel=1e-6)  # projected in float32 at build
    with torch.no_grad():
        model.hidden.weight.mul_(3.0).add_(0.1)
        model.hidden.bias.add_(1.0)
    direction = torch.cat([p.flatten() for p in model.first_layer()])
    model.project_()
    assert first_norm() == pytest.approx(10.0, rel=1e-12)
    after = torch.cat([p.flatten() for p in model.first_layer()])
    torch.testing.assert_close(after, direction * (10.0 / direction.norm()))


def test_the_toy_outputs_the_square_roots_of_its_two_terms():
    model = build_model({"name": "wen_ma_li_toy", "start": [0.5, -0.3, 0.2, -0.7]}, (2,), 1)
    a, b = torch.tensor(0.5), torch.tensor(-0.3)
    out = model(torch.eye(2)).flatten()
    assert out[0].item() == pytest.approx(math.sqrt(4 + 0.25 + 0.09) * 0.2, rel=1e-6)
    assert out[1].item() == pytest.approx(math.sqrt(float(f2(a, b))) * -0.7, rel=1e-6)
    assert float(f1(a, b)) > float(f2(a, b))


def test_toy_minimizers_are_where_the_slopes_vanish():
    a_lam, a_trace = toy_minimizers()
    assert a_lam == 1.0
    a = torch.tensor(a_trace, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(f1(a, torch.tensor(0.0)) + f2(a, torch.tensor(0.0)), a)
    assert abs(float(grad)) < 1e-12
    assert -1.0 < a_trace < 1.0
