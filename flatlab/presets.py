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
    """A benchmark body and what its claim is read from.

    `metrics` are the summary metrics the paper's claim is about (the runner
    `scripts/run_preset.py` tabulates them, and every point's spec must ask for
    what they need); `series` are metrics whose course over the run matters
    (Khanh et al.'s gradient norm), tabulated at a few evaluation steps.
    """

    name: str
    title: str
    reference: str
    body: dict[str, Any]
    metrics: tuple[str, ...] = ()
    series: tuple[str, ...] = ()


def _preset(
    name: str,
    title: str,
    reference: str,
    *,
    metrics: tuple[str, ...] = (),
    series: tuple[str, ...] = (),
    **body: Any,
) -> Preset:
    body = {"name": name, **body}
    return Preset(name, title, reference, body, metrics, series)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        _preset(
            "behdin2023",
            "SAM vs GD: prediction error over label-noise levels, kernel and network students",
            "Behdin & Mazumder 2023, On statistical properties of sharpness-aware minimization",
            # One teacher (a one-hidden-layer tanh network) for both students: a kernel
            # estimator (random Fourier features, convex in its head) and a one-hidden-layer
            # network (non-convex). Full-batch GD vs full-batch SAM at the same step size;
            # prediction_error (distance to the noiseless teacher) is logged at every
            # evaluation, so its minimum over the run is the early-stopped error too.
            metrics=("prediction_error", "final_train_loss", "final_test_loss"),
            series=("prediction_error",),
            base={
                "model": {"name": "random_features", "num_features": 256},
                "data": {"name": "teacher_student", "n_train": 128, "dim": 8, "sampling": "full"},
                "optimizer": {"name": "gd", "base": _sgd(0.2)},
                "training": {"epochs": 400, "device": "cpu", "log_every_steps": 50},
                "measure": {"every_epochs": 20, "sharpness": ["prediction_error"]},
            },
            axes={
                "model": [
                    {"name": "random_features", "num_features": 256},
                    {"name": "one_hidden", "width": 32},
                ],
                "optimizer": [
                    {"name": "gd", "label": "GD", "base": _sgd(0.2)},
                    {"name": "sam", "label": "SAM", "rho": 0.05, "base": _sgd(0.2)},
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
            # Logistic regression on digits: a convex finite sum whose per-example
            # smoothness ‖x_i‖² varies (10 to 23), so importance sampling (q_i ∝ ‖x_i‖²,
            # reweighted 1/(n q_i) as the theory has it) differs from uniform.
            metrics=("final_train_loss", "ascent_sharpness_grad_norm", "final_test_acc"),
            series=("train_loss",),
            base={
                "model": {"name": "linear"},
                "data": {"name": "digits", "batch_size": 8},
                "optimizer": {"name": "unified_sam", "rho": 0.05, "base": _sgd(0.05)},
                "training": {"epochs": 10, "device": "cpu", "log_every_steps": 100},
                "measure": {
                    "every_epochs": 2,
                    "num_examples": 2048,
                    "sharpness": ["ascent_sharpness"],
                },
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
            # The paper's two-layer ReLU setting: output layer fixed (±1/width, mean-field
            # scale, hence the large step sizes), MSE, over-parameterized (width 64, d = 8,
            # 64 examples, noiseless teacher) so that training reaches near-zero loss and
            # the minimizers differ in flatness. SGD and SAM at two radii × two step sizes.
            metrics=("hessian_trace", "final_train_loss", "prediction_error", "gen_gap_loss"),
            base={
                "model": {"name": "two_layer_relu", "width": 64, "train_output_layer": False},
                "data": {
                    "name": "relu_teacher",
                    "n_train": 64,
                    "dim": 8,
                    "noise": 0.0,
                    "batch_size": 8,
                },
                "optimizer": {"name": "sgd", "base": _sgd(8.0)},
                "training": {"epochs": 300, "device": "cpu", "log_every_steps": 400},
                "measure": {
                    "every_epochs": 100,
                    "num_examples": 64,
                    "sharpness": [{"name": "hessian_trace", "probes": 50}],
                },
            },
            axes={
                "optimizer": [
                    {"name": "sgd", "label": "SGD", "base": _sgd(8.0)},
                    {"name": "sam", "label": "SAM-0.5", "rho": 0.5, "base": _sgd(8.0)},
                    {"name": "sam", "label": "SAM-2", "rho": 2.0, "base": _sgd(8.0)},
                ],
                "optimizer.base.lr": [4.0, 8.0],
            },
            seeds=[0, 1, 2],
            baseline="SGD·lr=8.0",
            tags=["preset", "wen_li_ma2023"],
        ),
        _preset(
            "wen_ma_li2023",
            "Full-batch vs batch-size-1 SAM: top eigenvalue, trace, gradient–eigenvector alignment",
            "Wen, Ma & Li, ICLR 2023, How does sharpness-aware minimization minimize sharpness?",
            # The regime of the theorems: an over-parameterized two-layer ReLU network
            # (width 32, d = 4, 24 examples, noiseless teacher) trained with MSE to near
            # zero loss, where the minimizers form a manifold. Each rule runs with and
            # without SAM's ascent (plain GD / SGD at the same step size) so that what
            # SAM adds is read against its own base; both regimes take the same number of
            # steps (3000: 3000 full-batch epochs, or 125 epochs of batch-size-1 steps).
            # Measures on the whole training set.
            metrics=(
                "hessian_top_eigenvalue",
                "hessian_trace",
                "grad_eigvec_alignment",
                "final_train_loss",
            ),
            base={
                "model": {"name": "two_layer_relu", "width": 32},
                "data": {
                    "name": "relu_teacher",
                    "n_train": 24,
                    "dim": 4,
                    "noise": 0.0,
                    "batch_size": 1,
                },
                "optimizer": {"name": "sam", "rho": 0.1, "base": _sgd(0.05)},
                "training": {
                    "epochs": 3000,
                    "max_steps": 3000,
                    "device": "cpu",
                    "log_every_steps": 500,
                },
                "measure": {
                    "every_epochs": 1000,
                    "num_examples": 24,
                    "sharpness": [
                        "hessian_top_eigenvalue",
                        {"name": "hessian_trace", "probes": 100},
                        "grad_eigvec_alignment",
                    ],
                },
            },
            axes={
                "optimizer": [
                    {"name": "sgd", "label": "noSAM", "base": _sgd(0.05)},
                    {"name": "sam", "label": "SAM", "rho": 0.1, "base": _sgd(0.05)},
                ],
                "data.sampling": ["full", "uniform"],
            },
            seeds=[0, 1, 2],
            baseline="noSAM·sampling=full",
            tags=["preset", "wen_ma_li2023"],
        ),
        _preset(
            "khanh2024",
            "SAM, USAM, VaSSO and RSAM with constant and diminishing step sizes",
            "Khanh et al. 2024, Fundamental convergence analysis of sharpness-aware minimization",
            # Deterministic (full-batch) rules, as the theorems are stated. ρ follows the
            # step size (`rho_schedule: lr`): constant with a constant step, and
            # ρ_t ∝ t_t → 0 with the diminishing one (t_t = t_0/(1+t)^0.6: Σ t_t = ∞,
            # Σ t_t² < ∞). ‖∇f(x_t)‖ on the whole training set is the `grad_norm` extra of
            # `ascent_sharpness`, logged at every evaluation (every 100 iterations).
            metrics=("ascent_sharpness_grad_norm", "final_train_loss"),
            series=("ascent_sharpness_grad_norm",),
            base={
                "model": {"name": "one_hidden", "width": 16},
                "data": {
                    "name": "teacher_student",
                    "n_train": 128,
                    "noise": 0.1,
                    "sampling": "full",
                },
                "optimizer": {"name": "sam", "base": _sgd(0.2)},
                "training": {"epochs": 2000, "device": "cpu", "log_every_steps": 100},
                "measure": {
                    "every_epochs": 100,
                    "num_examples": 128,
                    "sharpness": ["ascent_sharpness"],
                },
            },
            axes={
                "optimizer": [
                    {"name": name, "rho": 0.1, "rho_schedule": "lr", "base": _sgd(0.2)}
                    for name in ("sam", "usam", "vasso", "rsam")
                ],
                "optimizer.schedule": [
                    {"name": "constant"},
                    {"name": "diminishing", "power": 0.6},
                ],
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
        if isinstance(old, dict) and isinstance(value, dict):
            same_kind = value.get("name", old.get("name")) == old.get("name")
            out[key] = _merge(old, value) if same_kind else value
        else:
            out[key] = value
    return out
