"""The seed papers' presets, continued: Khanh et al. 2024 and Behdin & Mazumder 2023.

Same conventions as `flatlab.paper_presets`; torch-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flatlab.paper_presets import SEEDS, TWO_CYCLE_EIGENVALUES, sgd, training

KHANH_SCHEDULES = ["diminish1", "diminish2", "diminish3"]
KHANH_QUADRATIC = {"lr": 0.1, "rho": 0.05, "steps": 400}
KHANH_DIGITS_EPOCHS = 60  # the paper's 200 (a digits epoch is 11 steps)
BEHDIN_NOISE = [0.5, 1.0]
BEHDIN_STEPS = 100
BEHDIN_NOISE_SEEDS = list(range(30))
BIAS_VARIANCE_STEPS = 40


def _khanh_quadratic(make: Callable[..., Any]) -> Any:
    lr, rho = KHANH_QUADRATIC["lr"], KHANH_QUADRATIC["rho"]
    steps = int(KHANH_QUADRATIC["steps"])
    configs: list[dict[str, Any]] = [
        {"label": "GD constant", "optimizer": {"name": "gd", "base": sgd(lr)}},
        {"label": "SAM constant"},
    ]
    configs += [
        {"label": f"SAM {name}", "optimizer": {"schedule": {"name": name}}}
        for name in KHANH_SCHEDULES
    ]
    return make(
        "khanh2024_quadratic",
        "Strongly convex quadratic: GD and SAM with constant and Diminish 1/2/3 steps",
        "Khanh et al., NeurIPS 2024, Fundamental convergence analysis of sharpness-aware "
        "minimization",
        f"""Fig. 1's kind of problem: L(w) = ½wᵀHw, H with eigenvalues
        {TWO_CYCLE_EIGENVALUES} (rotated), full batch, so an epoch is one step. GD at a
        constant {lr}; SAM (ρ = {rho} constant) at a constant {lr} and with the paper's
        per-epoch schedules Diminish 1 {lr}/(k+1), Diminish 2 {lr}/(k+1)^0.5001,
        Diminish 3 {lr}/(m ln m) (m = 3, 4, … every 5 epochs). {steps} steps; the
        training loss (½wᵀHw, 0 at the minimum) every 100 steps.""",
        metrics=("final_train_loss",),
        series=("train_loss",),
        base={
            "model": {"name": "linear", "bias": False},
            "data": {
                "name": "quadratic",
                "eigenvalues": TWO_CYCLE_EIGENVALUES,
                "targets": "zero",
                "sampling": "full",
            },
            "optimizer": {"name": "sam", "rho": rho, "base": sgd(lr)},
            "training": training(steps),
            "measure": {"every_epochs": 100, "num_examples": len(TWO_CYCLE_EIGENVALUES)},
        },
        axes={"config": configs},
        seeds=SEEDS,
        baseline="SAM constant",
        tags=["preset", "khanh2024"],
    )


def _khanh_digits(make: Callable[..., Any]) -> Any:
    epochs = KHANH_DIGITS_EPOCHS
    configs: list[dict[str, Any]] = [
        {"label": "constant 0.1"},
        {"label": "constant 0.01", "optimizer": {"base": {"lr": 0.01}}},
    ]
    configs += [
        {"label": name, "optimizer": {"schedule": {"name": name}}} for name in KHANH_SCHEDULES
    ]
    return make(
        "khanh2024_digits",
        "SAM on digits with constant and Diminish 1/2/3 learning rates",
        "Khanh et al., NeurIPS 2024, Fundamental convergence analysis of sharpness-aware "
        "minimization",
        f"""The paper's training recipe on a CPU-sized problem: SAM ρ = 0.05, base SGD
        momentum 0, weight decay 1e-3, batch 128, schedules stepped per epoch: constant
        0.1 and 0.01, Diminish 1/2/3 from 0.1. Scaled down: scikit-learn digits and a
        small CNN (channels 8, 16, BatchNorm) instead of CIFAR with ResNet/WRN (no
        CIFAR files on the machine), {epochs} epochs instead of 200 (constant 0.1
        reaches 98% test accuracy by epoch 30); no 90/10 split (the test set is
        digits' held-out quarter).""",
        metrics=("final_test_acc", "final_train_loss"),
        base={
            "model": {"name": "cnn", "channels": [8, 16], "batchnorm": True},
            "data": {"name": "digits", "batch_size": 128},
            "optimizer": {"name": "sam", "rho": 0.05, "base": sgd(0.1, 1e-3)},
            "training": training(epochs),
            "measure": {"every_epochs": epochs},
        },
        axes={"config": configs},
        seeds=SEEDS,
        baseline="constant 0.1",
        tags=["preset", "khanh2024"],
    )


def _behdin_prediction(make: Callable[..., Any]) -> Any:
    steps = BEHDIN_STEPS
    return make(
        "behdin2023",
        "SAM vs GD: prediction error of a kernel and a one-hidden-layer student",
        "Behdin & Mazumder 2023, On statistical properties of sharpness-aware minimization",
        f"""Our own instance (the paper's sizes, ρ, η and noise levels are not
        available): one noisy teacher (one hidden tanh layer of width 8, d = 8, 128
        examples), two students trained full batch at the same step 0.2 for {steps}
        steps: random Fourier features (256, a kernel estimator, convex) and a
        one-hidden-layer tanh network (width 32, non-convex); GD vs SAM (ρ = 0.1);
        noise σ ∈ {BEHDIN_NOISE}. The prediction error (squared distance to the
        noiseless teacher on fresh inputs) every 5 steps, so the early-stopped
        minimum is resolved.""",
        metrics=("prediction_error", "final_train_loss"),
        series=("prediction_error",),
        base={
            "model": {"name": "random_features", "num_features": 256},
            "data": {"name": "teacher_student", "n_train": 128, "dim": 8, "sampling": "full"},
            "optimizer": {"name": "gd", "base": sgd(0.2)},
            "training": training(steps),
            "measure": {"every_epochs": 5, "sharpness": ["prediction_error"]},
        },
        axes={
            "model": [
                {"name": "random_features", "num_features": 256},
                {"name": "one_hidden", "width": 32},
            ],
            "optimizer": [
                {"name": "gd", "label": "GD", "base": sgd(0.2)},
                {"name": "sam", "label": "SAM", "rho": 0.1, "base": sgd(0.2)},
            ],
            "data.noise": BEHDIN_NOISE,
        },
        seeds=SEEDS,
        baseline="random_features·GD·noise=0.5",
        tags=["preset", "behdin2023"],
    )


def _behdin_bias_variance(make: Callable[..., Any]) -> Any:
    steps = BIAS_VARIANCE_STEPS
    return make(
        "behdin2023_bias_variance",
        "Least squares: bias and variance of SAM and GD along training, over 30 noise draws",
        "Behdin & Mazumder 2023, On statistical properties of sharpness-aware minimization",
        f"""Our own instance: a linear teacher (d = 32), 64 training inputs fixed, label
        noise σ = 1 drawn afresh for each of {len(BEHDIN_NOISE_SEEDS)} noise seeds (the
        same draws for both rules), a linear student without bias trained full batch
        at the same step 0.05 from one PyTorch-default start (training seed 0), GD vs SAM (ρ = 0.5),
        {steps} steps. scripts/reproduce.py reads the students' predictions on the
        test inputs at steps 5, 20 and {steps} and splits the prediction error into
        bias² (of the mean over noise draws) and variance (across them).""",
        metrics=("prediction_error",),
        base={
            "model": {"name": "linear", "bias": False},
            "data": {
                "name": "teacher_student",
                "teacher": "linear",
                "dim": 32,
                "n_train": 64,
                "n_test": 1000,
                "noise": 1.0,
                "sampling": "full",
            },
            "optimizer": {"name": "gd", "base": sgd(0.05)},
            "training": training(steps),
            "measure": {"every_epochs": 5, "sharpness": ["prediction_error"]},
        },
        axes={
            "optimizer": [
                {"name": "gd", "label": "GD", "base": sgd(0.05)},
                {"name": "sam", "label": "SAM", "rho": 0.5, "base": sgd(0.05)},
            ],
            "data.noise_seed": BEHDIN_NOISE_SEEDS,
        },
        seeds=[0],
        baseline="GD·noise_seed=0",
        tags=["preset", "behdin2023"],
    )


def later_presets(make: Callable[..., Any]) -> list[Any]:
    """Khanh et al. and Behdin & Mazumder, in the order docs/reproductions.md lists them."""
    return [
        _khanh_quadratic(make),
        _khanh_digits(make),
        _behdin_prediction(make),
        _behdin_bias_variance(make),
    ]
