"""Benchmarks from the seed papers, ready to submit as `{"preset": NAME}`.

Each preset is a benchmark body small enough to run on a CPU in minutes
(synthetic data or digits, small models, a few seeds). `apply_preset` fills a
request from its preset: the request's `base` is merged into the preset's base
field by field, its `axes` replace the preset's axes of the same path (an axis
given as null is dropped), and any other field replaces the preset's. Torch-free.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

__all__ = ["PRESETS", "Preset", "UnknownPreset", "apply_preset"]


def _sgd(lr: float) -> dict[str, Any]:
    """Plain (stochastic) gradient steps, as the papers analyse: no momentum, no decay."""
    return {"name": "sgd", "lr": lr, "momentum": 0.0, "weight_decay": 0.0}


class UnknownPreset(LookupError):
    pass


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    reference: str
    body: dict[str, Any]


def _preset(name: str, title: str, reference: str, **body: Any) -> Preset:
    return Preset(name=name, title=title, reference=reference, body={"name": name, **body})


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        _preset(
            "behdin2023",
            "SAM vs GD: prediction error over label-noise levels, kernel and network students",
            "Behdin & Mazumder 2023, On statistical properties of sharpness-aware minimization",
            base={
                "model": {"name": "random_features", "num_features": 128},
                "data": {"name": "kernel_regression", "n_train": 128, "sampling": "full"},
                "optimizer": {"name": "gd", "base": _sgd(0.05)},
                "training": {"epochs": 200, "device": "cpu", "log_every_steps": 20},
                "measure": {"every_epochs": 200, "sharpness": ["prediction_error"]},
            },
            axes={
                "model": [
                    {"name": "random_features", "num_features": 128},
                    {"name": "one_hidden", "width": 32},
                ],
                "optimizer": [
                    {"name": "gd", "label": "GD", "base": _sgd(0.05)},
                    {
                        "name": "sam",
                        "label": "SAM",
                        "rho": 0.05,
                        "base": _sgd(0.05),
                    },
                ],
                "data.noise": [0.1, 0.5, 1.0],
            },
            seeds=[0, 1, 2],
            baseline="random_features·GD·noise=0.1",
            tags=["preset", "behdin2023"],
        ),
        _preset(
            "oikonomou2025",
            "Unified SAM: λ ∈ {0, 0.5, 1} with importance vs uniform sampling",
            "Oikonomou & Loizou, ICLR 2025, Sharpness-aware minimization: general analysis",
            base={
                "model": {"name": "linear"},
                "data": {"name": "teacher_student", "teacher": "linear", "batch_size": 8},
                "optimizer": {
                    "name": "unified_sam",
                    "rho": 0.05,
                    "base": _sgd(0.02),
                },
                "training": {"epochs": 20, "device": "cpu"},
                "measure": {"every_epochs": 5},
            },
            axes={"optimizer.lam": [0.0, 0.5, 1.0], "data.sampling": ["uniform", "importance"]},
            seeds=[0, 1, 2],
            baseline="lam=1.0·sampling=uniform",
            tags=["preset", "oikonomou2025"],
        ),
        _preset(
            "wen_li_ma2023",
            "Two-layer ReLU networks: Hessian trace against generalization, SGD and SAM",
            "Wen, Li & Ma, NeurIPS 2023, Sharpness minimization algorithms do not only "
            "minimize sharpness to achieve better generalization",
            base={
                "model": {"name": "two_layer_relu", "width": 64},
                "data": {"name": "relu_teacher", "n_train": 256, "batch_size": 16},
                "optimizer": {"name": "sgd", "base": _sgd(0.05)},
                "training": {"epochs": 30, "device": "cpu"},
                "measure": {
                    "every_epochs": 10,
                    "sharpness": [{"name": "hessian_trace", "probes": 20}],
                },
            },
            axes={
                "optimizer": [
                    {"name": "sgd", "label": "SGD", "base": _sgd(0.05)},
                    {
                        "name": "sam",
                        "label": "SAM",
                        "rho": 0.05,
                        "base": _sgd(0.05),
                    },
                ],
                "optimizer.base.lr": [0.02, 0.05],
            },
            seeds=[0, 1, 2, 3, 4],
            baseline="SGD·lr=0.05",
            tags=["preset", "wen_li_ma2023"],
        ),
        _preset(
            "wen_ma_li2023",
            "Full-batch vs batch-size-1 SAM: top eigenvalue, trace, gradient–eigenvector alignment",
            "Wen, Ma & Li, ICLR 2023, How does sharpness-aware minimization minimize sharpness?",
            base={
                "model": {"name": "two_layer_relu", "width": 32},
                "data": {"name": "relu_teacher", "n_train": 128, "dim": 8, "batch_size": 1},
                "optimizer": {"name": "sam", "rho": 0.05, "base": _sgd(0.02)},
                "training": {"epochs": 10, "device": "cpu", "log_every_steps": 50},
                "measure": {
                    "every_epochs": 5,
                    "sharpness": [
                        "hessian_top_eigenvalue",
                        {"name": "hessian_trace", "probes": 20},
                        "grad_eigvec_alignment",
                    ],
                },
            },
            axes={"data.sampling": ["uniform", "full"]},
            seeds=[0, 1, 2],
            baseline="sampling=full",
            tags=["preset", "wen_ma_li2023"],
        ),
        _preset(
            "khanh2024",
            "SAM, USAM, VaSSO and RSAM with constant and diminishing step sizes",
            "Khanh et al. 2024, Fundamental convergence analysis of sharpness-aware minimization",
            base={
                "model": {"name": "one_hidden", "width": 16},
                "data": {"name": "teacher_student", "n_train": 256, "batch_size": 32},
                "optimizer": {"name": "sam", "base": _sgd(0.05)},
                "training": {"epochs": 20, "device": "cpu"},
                "measure": {"every_epochs": 5},
            },
            axes={
                "optimizer": [
                    {"name": "sam", "rho": 0.05, "base": _sgd(0.05)},
                    {"name": "usam", "rho": 0.05, "base": _sgd(0.05)},
                    {"name": "vasso", "rho": 0.05, "base": _sgd(0.05)},
                    {"name": "rsam", "rho": 0.05, "base": _sgd(0.05)},
                ],
                "optimizer.schedule": [{"name": "constant"}, {"name": "diminishing"}],
            },
            seeds=[0, 1, 2],
            baseline="sam·schedule=constant",
            tags=["preset", "khanh2024"],
        ),
    ]
}


def apply_preset(request: dict[str, Any]) -> dict[str, Any]:
    """The benchmark body of `request["preset"]` with the request's fields laid over it."""
    name = request["preset"]
    preset = PRESETS.get(name)
    if preset is None:
        raise UnknownPreset(f"no preset {name!r}; one of {', '.join(PRESETS)}")
    body = copy.deepcopy(preset.body)
    for key, value in request.items():
        if key == "base":
            body["base"] = _merge(body["base"], value)
        elif key == "axes":
            axes = {**body.get("axes", {}), **value}
            body["axes"] = {k: v for k, v in axes.items() if v is not None}
        else:
            body[key] = value
    return body


def _merge(into: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `into`, recursively; a block naming another rule/model/data set replaces."""
    out = dict(into)
    for key, value in over.items():
        old = out.get(key)
        same_kind = isinstance(old, dict) and value.get("name", old.get("name")) == old.get("name")
        out[key] = _merge(old, value) if isinstance(value, dict) and same_kind else value
    return out
