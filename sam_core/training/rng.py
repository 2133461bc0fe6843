"""Seeding and the random-number state a run must carry across a checkpoint.

A run uses torch's global generator for what torch draws itself (model initialisation,
dropout, rules that perturb at random) and explicit `torch.Generator`s for what the
loop draws (the order of examples, augmentation). All of it is seeded from the spec's
seed and saved as tensors and plain values, so a checkpoint loads with
`torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

# Offsets that give each explicit stream its own seed, so that, say, asking for
# augmentation never changes the order in which examples are drawn.
SAMPLING_STREAM = 1
AUGMENT_STREAM = 2
MEASURE_STREAM = 3
OPTIMIZER_STREAM = 4


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's `random` from one seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    """An explicit generator for one stream of the run, independent of the others."""
    generator = torch.Generator(device=device)
    generator.manual_seed(stream_seed(seed, stream))
    return generator


def stream_seed(seed: int, stream: int) -> int:
    """The seed of one stream of a run: distinct for every (seed, stream) pair."""
    return seed * 1000 + stream


def global_rng_state() -> dict[str, Any]:
    """The global generators' states: torch CPU, every CUDA device, numpy, `random`."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what `global_rng_state` captured."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Run a block without it changing the global generators the training stream uses.

    Evaluations and measures run inside this, so what a run measures, and how often,
    never changes the weights it ends with.
    """
    state = global_rng_state()
    try:
        yield
    finally:
        set_global_rng_state(state)
