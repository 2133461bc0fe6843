"""Small job specs for the integration tests: each trains in a second or a few."""

from __future__ import annotations

import copy
from typing import Any

TINY: dict[str, Any] = {
    "name": "it-tiny",
    "tags": ["integration"],
    "model": {"name": "one_hidden", "width": 8},
    "data": {"name": "teacher_student", "n_train": 64, "n_test": 64, "dim": 4, "batch_size": 16},
    "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.05}},
    "training": {"epochs": 2, "seed": 0, "device": "cpu", "log_every_steps": 1},
    "measure": {"every_epochs": 1, "num_examples": 64},
}

DIGITS: dict[str, Any] = {
    "name": "it-digits",
    "tags": ["integration", "digits"],
    "model": {"name": "mlp", "hidden": [16]},
    "data": {"name": "digits", "batch_size": 128},
    "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.1}},
    "training": {"epochs": 1, "seed": 0, "device": "cpu", "log_every_steps": 1},
    "measure": {
        "every_epochs": 1,
        "num_examples": 256,
        "sharpness": [{"name": "hessian_trace", "probes": 4}],
    },
}


def spec(base: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A copy of `base` with dotted-path overrides: `spec(TINY, **{"training.epochs": 5})`."""
    out = copy.deepcopy(base)
    for dotted, value in overrides.items():
        *path, last = dotted.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return out
