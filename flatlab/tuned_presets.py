"""Tuned-comparison presets: `POST /v1/benchmarks {"preset": NAME}` runs the protocol.

Each is a `mode: tuned` benchmark body (`sam_core.spec.study.TunedBody`): every
optimizer is tuned by a study on the same budget, on the validation split, and its
best configuration re-runs over the seeds. Fields of the request replace the
preset's (`base` merges field by field). Torch-free.
"""

from __future__ import annotations

import copy
from typing import Any

from sam_core.spec.benchmark import overlay_spec

__all__ = ["TUNED_PRESETS", "apply_tuned_preset"]

_LR = {"type": "log_uniform", "low": 0.003, "high": 1.0}

TUNED_PRESETS: dict[str, dict[str, Any]] = {
    "tuned_digits_sgd_vs_sam": {
        "mode": "tuned",
        "name": "tuned_digits_sgd_vs_sam",
        "base": {
            "model": {"name": "mlp", "hidden": [32]},
            "data": {"name": "digits", "batch_size": 32, "validation_fraction": 0.2},
            "optimizer": {"name": "sgd"},
            "training": {"epochs": 3, "device": "cpu"},
        },
        "optimizers": [
            {
                "label": "SGD",
                "optimizer": {"name": "sgd", "base": {"name": "sgd", "lr": 0.1}},
                "search_space": {"optimizer.base.lr": _LR},
            },
            {
                "label": "SAM",
                "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.1}},
                "search_space": {
                    "optimizer.base.lr": _LR,
                    "optimizer.rho": {"type": "log_uniform", "low": 0.005, "high": 0.5},
                },
            },
        ],
        "sampler": {"name": "tpe", "seed": 0, "n_startup_trials": 4},
        "pruner": {"name": "median", "n_startup_trials": 4},
        "budget": {"trials": 8, "parallel": 1},
        "objective": {"metric": "final_val_acc", "direction": "maximize"},
        "seeds": list(range(10)),
        "baseline": "SGD",
    }
}


def apply_tuned_preset(request: dict[str, Any]) -> dict[str, Any]:
    """The preset's body with the request's fields laid over it (`base` merged)."""
    body = copy.deepcopy(TUNED_PRESETS[request["preset"]])
    for key, value in request.items():
        if key == "base":
            body["base"] = overlay_spec(body["base"], value)
        elif key != "preset":
            body[key] = value
    return body
