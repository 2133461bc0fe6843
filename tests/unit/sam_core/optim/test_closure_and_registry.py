"""BatchClosure's passes and the registry's self-description."""

from __future__ import annotations

import torch
from torch import nn

from sam_core.optim import BatchClosure, create_optimizer, describe_optimizers
from sam_core.spec.optimizers import RULES
from tests.unit.sam_core.optim.nets import TinyNet, batches


def test_weighted_loss_is_the_mean_of_weighted_example_losses():
    torch.manual_seed(0)
    model, ((x, y),) = TinyNet(), batches(1, 6, (3,))
    weights = torch.linspace(0.5, 2.0, 6)
    loss = BatchClosure(model, nn.CrossEntropyLoss(), x, y, weights)()
    each = nn.CrossEntropyLoss(reduction="none")(model(x), y)
    torch.testing.assert_close(loss, (weights * each).mean())


def test_mse_per_example_losses_average_to_the_mean_loss():
    torch.manual_seed(0)
    model, x = nn.Linear(3, 2), torch.randn(5, 3)
    y = torch.randn(5, 2)
    closure = BatchClosure(model, nn.MSELoss(), x, y)
    torch.testing.assert_close(closure.per_example_losses().mean(), nn.MSELoss()(model(x), y))


def test_first_outputs_are_kept_from_the_first_pass_only(tiny):
    ((x, y),) = batches(1, 6, (3,))
    closure = BatchClosure(tiny, nn.CrossEntropyLoss(), x, y)
    create_optimizer("sam", tiny, rho=0.5).step(closure)
    torch.manual_seed(0)
    expected = TinyNet()  # the same initial weights as the fixture
    torch.testing.assert_close(closure.first_outputs, expected(x).detach())
    assert not closure.first_outputs.requires_grad


def test_split_covers_the_batch_in_order():
    x, y = torch.arange(10.0).reshape(10, 1), torch.zeros(10, dtype=torch.long)
    chunks = BatchClosure(nn.Linear(1, 2), nn.CrossEntropyLoss(), x, y).split(4)
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert torch.equal(torch.cat([c.x for c in chunks]), x)


def test_describe_optimizers_gives_every_rule_with_its_schema():
    described = {d["name"]: d for d in describe_optimizers()}
    assert set(described) == set(RULES)
    assert described["sam"]["params_schema"]["properties"]["rho"]["default"] == 0.05
    assert described["looksam"]["passes"] == "1 + 1/k"


def test_grad_evals_per_step_are_reported(tiny):
    ((x, y),) = batches(1, 10, (3,))
    counts = {}
    for name in ("sgd", "sam", "msam", "esam"):
        opt = create_optimizer(name, tiny, seed=0)
        opt.step(BatchClosure(tiny, nn.CrossEntropyLoss(), x, y))
        counts[name] = opt.last_grad_evals
    assert counts == {"sgd": 1.0, "sam": 2.0, "msam": 2.0, "esam": 1.5}


def test_float64_model_gets_float64_weighted_losses():
    gen = torch.Generator().manual_seed(3)
    model = nn.Linear(3, 1).double()
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(5, 1, generator=gen, dtype=torch.float64)
    weights = 1.0 / (5 * torch.tensor([0.1, 0.3, 0.2, 0.15, 0.25], dtype=torch.float64))
    closure = BatchClosure(model, nn.MSELoss(), x, y, weights)
    loss = closure()
    assert loss.dtype == torch.float64
    assert closure.per_example_losses().dtype == torch.float64
    by_hand = (weights * ((model(x) - y) ** 2).squeeze(1)).mean()
    # float64 throughout: agreement to a few ulps, far below float32's 6e-8
    torch.testing.assert_close(loss, by_hand.detach(), rtol=1e-14, atol=0.0)
