"""Time of one training step of every optimizer, relative to SGD on the same model and batch.

Each rule gets its own copy of one initial model and the same batch. After a
warm-up, rounds alternate over the rules (the order rotates each round); a
round times a block of ``--block`` consecutive steps per rule (5 covers
LookSAM's k = 5 cycle), and the table reports medians over rounds, as ratios
to SGD. On CPU the clock is the process's CPU time (robust to other load on a
shared machine); on GPU, wall-clock time between ``torch.cuda.synchronize``.
One Hessian-vector product is timed against one gradient and against the same
product written in plain autograd, on the same batch, in the same rounds.

    python bench/optim_step.py                                  # CPU, small CNN
    python bench/optim_step.py --device cuda --model resnet18   # GPU
    python bench/optim_step.py --hvp-only --rounds 9            # the HVP ratios alone
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from sam_core.models import build_model
from sam_core.optim import BatchClosure, create_optimizer, list_optimizers
from sam_core.sharpness.hvp import HessianOperator, hessian_vector_product
from sam_core.sharpness.objective import Objective

TARGETS = (
    "SAM ≤ 2.1× SGD; LookSAM and ESAM below SAM; HVP ≤ 3× a gradient; HVP ≤ 1.1× plain autograd"
)


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        # One thread: CPU time is then the work itself, not other threads spinning.
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model({"name": args.model}, (3, 32, 32), 10).to(device)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    loss_fn = nn.CrossEntropyLoss()
    print(
        f"device={device} model={args.model} batch={args.batch} "
        f"threads={torch.get_num_threads()} clock={clock(device).__name__}"
    )
    if not args.hvp_only:
        rules = [name for name in list_optimizers() if name != "gd"]
        steps = {name: make_stepper(name, model, loss_fn, x, y) for name in rules}
        times = interleaved(steps, args.warmup, args.rounds, args.block, device)
        report(rules, times, steps)
    report_hvp(time_hvp(model, loss_fn, x, y, args, device))
    print(f"targets: {TARGETS}")


class Stepper:
    """One rule on its own copy of the model; calling it takes one optimizer step."""

    def __init__(self, name: str, model: nn.Module, loss_fn: nn.Module, x, y) -> None:
        self.model = copy.deepcopy(model)
        self.optimizer = create_optimizer(name, self.model, seed=0)
        self.loss_fn, self.x, self.y = loss_fn, x, y
        self.evals: list[float] = []

    def __call__(self) -> None:
        self.optimizer.step(BatchClosure(self.model, self.loss_fn, self.x, self.y))
        self.evals.append(self.optimizer.last_grad_evals)


def make_stepper(name: str, model: nn.Module, loss_fn: nn.Module, x, y) -> Stepper:
    return Stepper(name, model, loss_fn, x, y)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(device: torch.device) -> Callable[[], float]:
    """CPU: this process's CPU time, which other load on a shared machine barely moves.
    GPU: wall-clock time between synchronizations."""
    return time.process_time if device.type == "cpu" else time.perf_counter


def timed(fn: Callable[[], None], repeats: int, device: torch.device) -> float:
    now = clock(device)
    sync(device)
    start = now()
    for _ in range(repeats):
        fn()
    sync(device)
    return (now() - start) / repeats


def interleaved(
    steps: dict[str, Stepper], warmup: int, rounds: int, block: int, device: torch.device
) -> dict[str, list[float]]:
    names = list(steps)
    for name in names:
        timed(steps[name], warmup, device)
        steps[name].evals.clear()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed(steps[name], block, device))
    return times


def report(rules: list[str], times: dict[str, list[float]], steps: dict[str, Stepper]) -> None:
    base = statistics.median(times["sgd"])
    print(f"\n{'rule':<12} {'grad evals/step':>15} {'ms/step':>9} {'× SGD':>7}")
    for name in rules:
        median = statistics.median(times[name])
        evals = statistics.mean(steps[name].evals)
        print(f"{name:<12} {evals:>15.2f} {1e3 * median:>9.2f} {median / base:>7.2f}")


def time_hvp(
    model: nn.Module, loss_fn: nn.Module, x, y, args, device: torch.device
) -> dict[str, float]:
    """Median seconds of one gradient and of HVPs, ours and plain autograd, on the same batch.

    From scratch, a product is a forward, a backward that records its graph and
    a double backward: `hessian_vector_product` against the same three calls
    written directly with ``torch.autograd.grad`` ("plain"). Lanczos and
    Hutchinson on one fixed batch keep the gradient graph
    (`HessianOperator(cache_graph=True)`), so each further product costs the
    double backward alone: against a plain double backward on a kept graph.
    All five are timed in the same rounds, in eval mode.
    """
    model = copy.deepcopy(model).eval()
    params = [p for p in model.parameters() if p.requires_grad]
    vector = [torch.randn_like(p) for p in params]
    # Graphs kept across calls live on their own copies of the model.
    cached_model = copy.deepcopy(model)
    operator = HessianOperator(Objective(cached_model, loss_fn, [(x, y)]), cache_graph=True)
    flat = torch.cat([v.reshape(-1) for v in vector])
    plain_model = copy.deepcopy(model)
    plain_params = [p for p in plain_model.parameters() if p.requires_grad]
    kept = torch.autograd.grad(loss_fn(plain_model(x), y), plain_params, create_graph=True)

    def gradient() -> None:
        model.zero_grad()
        loss_fn(model(x), y).backward()

    def hvp() -> None:
        hessian_vector_product(model, loss_fn, [(x, y)], vector)

    def plain_hvp() -> None:
        g = torch.autograd.grad(loss_fn(model(x), y), params, create_graph=True)
        dot = sum((a * b).sum() for a, b in zip(g, vector, strict=True))
        torch.autograd.grad(dot, params)

    def hvp_cached() -> None:
        operator(flat)

    def plain_cached() -> None:
        dot = sum((a * b).sum() for a, b in zip(kept, vector, strict=True))
        torch.autograd.grad(dot, plain_params, retain_graph=True)

    fns = {
        "grad": gradient,
        "hvp": hvp,
        "plain": plain_hvp,
        "cached": hvp_cached,
        "plain_cached": plain_cached,
    }
    for fn in fns.values():
        timed(fn, args.warmup, device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(args.rounds):
        names = list(fns)[r % len(fns) :] + list(fns)[: r % len(fns)]
        for name in names:
            times[name].append(timed(fns[name], 2, device))
    return {name: statistics.median(values) for name, values in times.items()}


def report_hvp(t: dict[str, float]) -> None:
    print(
        f"\nHVP / gradient: {t['hvp'] / t['grad']:.2f}× from scratch, "
        f"{t['cached'] / t['grad']:.2f}× with the graph cached"
    )
    print(
        f"HVP / plain autograd HVP (same batch, same rounds): "
        f"{t['hvp'] / t['plain']:.3f}× from scratch, "
        f"{t['cached'] / t['plain_cached']:.3f}× with the graph cached"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="cnn", help="a sam_core.models name (cnn, resnet18…)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps (CPU 1, GPU 5)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (CPU 3, GPU 20)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--block", type=int, default=5, help="steps timed together per round")
    parser.add_argument("--hvp-only", action="store_true", help="time the HVPs only")
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    args.rounds = args.rounds if args.rounds is not None else (20 if gpu else 3)
    return args


if __name__ == "__main__":
    main()
