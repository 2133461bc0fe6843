"""Step time of data-parallel SAM (`global`, `local`) against DDP SGD, and bytes all-reduced.

For each world size (1, 2, 4 ranks by default) one launch (`torch.distributed`'s
elastic agent, as torchrun) starts the ranks; in each, the three configurations
(DDP SGD, `global` SAM, `local` SAM) train copies of one MLP on the same global batch,
split over the ranks. After a warm-up, rounds alternate over the configurations and
time a block of steps each (wall clock between barriers, so the slowest rank counts);
the table gives medians, as ratios: SAM against DDP SGD at the same world size, and
each configuration against itself on one rank. Bytes all-reduced per step are counted
where they are sent: DDP's buckets by a pass-through comm hook, `local`'s ĝ and
state all-reduce by the step itself.

    python bench/data_parallel.py                           # CPU, gloo, 1/2/4 ranks
    python bench/data_parallel.py --device cuda --ranks 1,2,4 --width 2048   # NCCL
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from sam_core.optim import create_optimizer
from sam_core.training.distributed import DataParallelSam, init_from_env, launch

CONFIGS = (
    ("ddp-sgd", "sgd", "global"),
    ("sam-global", "sam", "global"),
    ("sam-local", "sam", "local"),
)


def main() -> None:
    args = parse_args()
    logging.disable(logging.INFO)  # the elastic agent's event log
    results = {}
    for world in args.ranks:
        results[world] = launch(rank_main, (vars(args),), world)[0]
    print(report(results, args))


def rank_main(args: dict[str, Any]) -> dict[str, Any]:
    """Time every configuration on this rank; rank 0's medians and bytes are returned."""
    init_from_env(600, device=args["device"])
    torch.set_num_threads(args["threads"])
    rank, world = dist.get_rank(), dist.get_world_size()
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if args["device"] == "cuda"
        else torch.device("cpu")
    )
    generator = torch.Generator().manual_seed(0)
    batch, width = args["batch"], args["width"]
    x = torch.randn(batch, args["inputs"], generator=generator).to(device)
    y = torch.randint(0, 10, (batch,), generator=generator).to(device)
    part = torch.tensor_split(torch.arange(batch, device=device), world)[rank]
    runs = {}
    for label, rule, semantics in CONFIGS:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(args["inputs"], width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 10),
        ).to(device)
        params = {} if rule == "sgd" else {"rho": 0.05}
        optimizer = create_optimizer(rule, model, base={"lr": 0.01}, **params)
        runs[label] = DataParallelSam(
            model,
            optimizer,
            semantics,
            count_bytes=True,  # type: ignore[arg-type]
            device_ids=None if device.type == "cpu" else [device.index],
        )
    loss_fn = nn.CrossEntropyLoss()

    def block(label: str) -> float:
        run = runs[label]
        dist.barrier()
        sync(device)
        started = time.perf_counter()
        for _ in range(args["block"]):
            run.step(run.closure(loss_fn, x[part], y[part], None, batch))
        sync(device)
        dist.barrier()
        return (time.perf_counter() - started) / args["block"]

    for label in runs:  # warm-up: buckets built, caches hot
        block(label)
    bytes_per_step = {}
    for label, run in runs.items():
        run.bytes_reduced = 0
        block(label)
        bytes_per_step[label] = run.bytes_reduced / args["block"]
    times: dict[str, list[float]] = {label: [] for label in runs}
    order = list(runs)
    for r in range(args["rounds"]):
        for label in order[r % len(order) :] + order[: r % len(order)]:
            times[label].append(block(label))
    dist.destroy_process_group()
    return {"median": {k: statistics.median(v) for k, v in times.items()}, "bytes": bytes_per_step}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def report(results: dict[int, dict[str, Any]], args: argparse.Namespace) -> str:
    one = results.get(1)
    lines = [
        f"# data-parallel SAM, {args.device}: MLP {args.inputs}-{args.width}-{args.width}-10, "
        f"global batch {args.batch}, {args.rounds} rounds of {args.block} steps (medians)",
        "",
        "| ranks | global SAM / DDP SGD | local SAM / DDP SGD | local / global | "
        "SGD vs 1 rank | global vs 1 rank | local vs 1 rank | bytes all-reduced per step "
        "(SGD / global / local) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for world, res in results.items():
        m, b = res["median"], res["bytes"]
        vs_one = [
            f"{m[k] / one['median'][k]:.2f}×" if one is not None else "n/a"
            for k in ("ddp-sgd", "sam-global", "sam-local")
        ]
        lines.append(
            f"| {world} | {m['sam-global'] / m['ddp-sgd']:.2f}× | "
            f"{m['sam-local'] / m['ddp-sgd']:.2f}× | {m['sam-local'] / m['sam-global']:.2f}× | "
            + " | ".join(vs_one)
            + f" | {b['ddp-sgd']:,.0f} / {b['sam-global']:,.0f} / {b['sam-local']:,.0f} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--ranks", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=64, help="global batch")
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    return parser.parse_args()


if __name__ == "__main__":
    main()
