"""A seed ensemble against one seed alone and against the same seeds run one by one.

32 seeds of SAM on the two-layer ReLU network (Wen, Li & Ma 2023) and its ReLU
teacher, trained three ways in one process: one seed alone (`train`), all seeds
as one vectorised ensemble (`train_ensemble`), and every seed alone, one after
the other. One seed and the ensemble run `--repeats` times (the median counts).
Each way is timed end to end (set-up, training, evaluations) and by the
training clock alone (the runs' `train_seconds`, evaluations and measures
excluded). The clocks are process CPU time, robust to other load on a shared
machine, with torch on `--threads` threads (1 by default, so CPU time is wall
time on an idle machine); wall-clock figures are printed beside them. The
script also checks that each member's summary equals its solo run's to float32
rounding (a bound from the step count and the width, see `check_equal`).

    python bench/ensemble.py                       # 32 seeds, width 128, 25 epochs
    python bench/ensemble.py --width 64            # smaller network
    python bench/ensemble.py --solo-runs 4         # time 4 solo runs, extrapolate to 32
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from sam_core.spec import JobSpec
from sam_core.training import Finished, train
from sam_core.training.ensemble import train_ensemble

TARGET = "ensemble of 32 ≤ 4× one seed (CPU)"
WALL_TIMES = {"train_seconds", "measure_seconds", "steps_per_second"}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    specs = [make_spec(seed, args) for seed in range(args.seeds)]
    print(
        f"{args.seeds} seeds · two_layer_relu width {args.width} · relu_teacher "
        f"n_train {args.n_train} · SAM · batch {args.batch} · {args.epochs} epochs · "
        f"threads {torch.get_num_threads()}"
    )
    train(make_spec(999, args, epochs=1), lambda event: None)  # warm-up
    one = median_of(args.repeats, lambda: [train(specs[0], lambda event: None)])
    ensemble = median_of(args.repeats, lambda: train_ensemble(specs, lambda i, event: None))
    solo_count = min(args.solo_runs, args.seeds)
    solo = timed(lambda: [train(spec, lambda event: None) for spec in specs[:solo_count]])
    scale = args.seeds / solo_count
    report(one, ensemble, solo, scale, args.seeds)
    check_equal(ensemble.finished[:solo_count], solo.finished, args)


@dataclass
class Timing:
    cpu: float
    wall: float
    train: float  # the runs' training clocks, summed
    finished: list[Finished]


def median_of(repeats: int, work: Callable[[], list[Finished]]) -> Timing:
    """The run with the median CPU time among `repeats` runs of `work`."""
    runs = sorted((timed(work) for _ in range(repeats)), key=lambda t: t.cpu)
    return runs[len(runs) // 2]


def timed(work: Callable[[], list[Finished]]) -> Timing:
    cpu, wall = time.process_time(), time.perf_counter()
    finished = work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # An ensemble's members share one training clock: count it once.
    clocks = {round(f.summary["train_seconds"], 9) for f in finished}
    train_clock = max(clocks) if len(finished) > 1 and len(clocks) == 1 else sum(clocks)
    return Timing(cpu, wall, train_clock, finished)


def report(one: Timing, ensemble: Timing, solo: Timing, scale: float, seeds: int) -> None:
    solo_label = f"{seeds} solo runs" + (
        "" if scale == 1 else f" (extrapolated ×{scale:g} from {len(solo.finished)})"
    )
    rows = [
        ("one seed alone", one.cpu, one.wall, one.train),
        (f"ensemble of {seeds}", ensemble.cpu, ensemble.wall, ensemble.train),
        (solo_label, solo.cpu * scale, solo.wall * scale, solo.train * scale),
    ]
    print("\n| | CPU s | wall s | training clock s |\n| --- | --- | --- | --- |")
    for name, cpu, wall, clock in rows:
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {clock:.2f} |")
    print(
        f"\nensemble / one seed: {ensemble.cpu / one.cpu:.2f}× CPU, "
        f"{ensemble.wall / one.wall:.2f}× wall, {ensemble.train / one.train:.2f}× training clock"
    )
    print(
        f"{seeds} solo / ensemble: {solo.cpu * scale / ensemble.cpu:.1f}× CPU, "
        f"{solo.wall * scale / ensemble.wall:.1f}× wall, "
        f"{solo.train * scale / ensemble.train:.1f}× training clock"
    )
    print(f"target: {TARGET}")


def check_equal(members: list[Finished], solos: list[Finished], args: argparse.Namespace) -> None:
    """Largest relative difference between a member's summary and its solo run's.

    Members sum in another order than solo runs (batched matmuls), in float32. Each
    step's sums run over at most max(width, batch) terms, so after `steps` steps of
    a stable trajectory the two differ by at most 8 · steps · max(width, batch) · eps
    relative (the bound of `tests/tolerance.float_tolerance`, Higham §3.1).
    """
    steps = args.epochs * math.ceil(args.n_train / args.batch)
    tolerance = 8 * steps * max(args.width, args.batch) * torch.finfo(torch.float32).eps
    worst = 0.0
    for member, solo in zip(members, solos, strict=True):
        # A member's summary adds `ensemble_size`: its clocks are the ensemble's.
        if member.status != solo.status or set(member.summary) != {*solo.summary, "ensemble_size"}:
            raise SystemExit(f"member and solo run differ: {member} vs {solo}")
        for name in set(solo.summary) - WALL_TIMES:
            a, b = member.summary[name], solo.summary[name]
            worst = max(worst, abs(a - b) / max(abs(b), 1.0))
    print(
        f"largest |member − solo| / max(|solo|, 1) over {len(solos)} summaries: {worst:.2e} "
        f"(bound {tolerance:.1e} for {steps} steps)"
    )
    if worst > tolerance:
        raise SystemExit(f"members differ from their solo runs by more than {tolerance:.1e}")


def make_spec(seed: int, args: argparse.Namespace, epochs: int | None = None) -> JobSpec:
    epochs = epochs or args.epochs
    raw: dict[str, Any] = {
        "model": {"name": "two_layer_relu", "width": args.width},
        "data": {"name": "relu_teacher", "batch_size": args.batch, "n_train": args.n_train},
        "optimizer": {"name": "sam", "rho": 0.05, "base": {"lr": 0.05}},
        "training": {
            "epochs": epochs,
            "seed": seed,
            "device": "cpu",
            "log_every_steps": 10,
            "checkpoint_every_epochs": epochs,
        },
        "measure": {"every_epochs": args.eval_every},
    }
    return JobSpec.model_validate(raw)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--eval-every", type=int, default=5, help="epochs between evaluations")
    parser.add_argument("--solo-runs", type=int, default=32, help="solo runs to time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of one seed and ensemble")
    return parser.parse_args()


if __name__ == "__main__":
    main()
