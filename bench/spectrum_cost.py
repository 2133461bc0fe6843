"""Hessian-vector products the spectrum measures spend, on three small trained nets.

λ_max: Lanczos (the default, error-bounded stop) against PyHessian-style
power iteration at its own stop rule (relative change < 1e-3), mean products
over 5 seeds, cold starts, on three small trained nets (`nets`), and the worst
relative error of each against λ_max to 1e-10. Trace: Hutch++ against
Hutchinson at equal products (60), their reported standard errors. Counts, not times, so the
figures do not depend on the machine.

    python bench/spectrum_cost.py
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

from sam_core.data import load_task
from sam_core.sharpness import hessian_top_eigenvalue, hessian_trace

SEEDS = range(5)
PROBES = 60


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(300):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    return model.eval()


def nets() -> dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """A 6-12-3 tanh MLP and a conv + BatchNorm net on 48 random examples, and a 64-32-10
    ReLU MLP on 512 scikit-learn digits; float64, each trained by Adam (300 full-batch
    steps)."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.randn(48, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (48,), generator=gen)
    mlp = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 3)).double()
    images = torch.randn(48, 1, 6, 6, generator=gen, dtype=torch.float64)
    conv = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3)
    ).double()
    task = load_task({"name": "digits"})
    digits_x, digits_y = task.x_train[:512].flatten(1).double(), task.y_train[:512]
    digits = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).double()
    return {
        "tanh_mlp": (_train(mlp, x, y), x, y),
        "conv_bn": (_train(conv, images, y), images, y),
        "digits_mlp": (_train(digits, digits_x, digits_y), digits_x, digits_y),
    }


def main() -> None:
    torch.set_num_threads(1)
    loss_fn = nn.CrossEntropyLoss()
    header = f"{'net':<10} {'Lanczos HVPs':>12} {'power HVPs':>10} {'ratio':>6}"
    print(header + "  worst rel. error Lanczos / power  Hutch++/Hutchinson stderr")
    for name, (model, x, y) in nets().items():
        batches = [(x, y)]
        lanczos = [hessian_top_eigenvalue(model, loss_fn, batches, seed=s) for s in SEEDS]
        power = [
            hessian_top_eigenvalue(model, loss_fn, batches, seed=s, method="power", max_iter=200)
            for s in SEEDS
        ]
        # λ_max to ~1e-10: the reference both are judged against
        exact = hessian_top_eigenvalue(model, loss_fn, batches, tol=1e-10, max_iter=300).value
        lz = statistics.mean(r.cost.hvps for r in lanczos)
        pw = statistics.mean(r.cost.hvps for r in power)
        lz_err = max(abs(r.value - exact) / abs(exact) for r in lanczos)
        pw_err = max(abs(r.value - exact) / abs(exact) for r in power)
        plus = hessian_trace(model, loss_fn, batches, probes=PROBES)
        plain = hessian_trace(model, loss_fn, batches, probes=PROBES, method="hutchinson")
        ratio = plus.extras["stderr"] / plain.extras["stderr"]
        errors = f"{lz_err:.1e} / {pw_err:.1e}"
        print(f"{name:<10} {lz:>12.1f} {pw:>10.1f} {lz / pw:>6.2f}  {errors:>32}  {ratio:.3f}")


if __name__ == "__main__":
    main()
