"""The seed papers' presets: each runs the paper's own setup, scaled down only in
epochs or width (each description says how), with three or more seeds.

`paper_presets(make)` builds them with `flatlab.presets._preset` as `make`
(Sim-BN is in the catalog but in no preset: with 1-SAM's batch of one, the RMS over
the batch of each hidden unit is |h_j| itself, so the paper's per-example
statistics cannot be read from our batch-wise definition).
`scripts/reproduce.py` runs them and writes docs/reproductions.md; the claims
and the rules that turn its tables into verdicts live there. Torch-free.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

SEEDS = [0, 1, 2]


def sgd(lr: float, weight_decay: float = 0.0) -> dict[str, Any]:
    """Plain (stochastic) gradient steps, as the papers analyse: no momentum."""
    return {"name": "sgd", "lr": lr, "momentum": 0.0, "weight_decay": weight_decay}


def training(epochs: int) -> dict[str, Any]:
    """CPU, logs rarely; checkpoints only at the end (full-batch epochs are single steps)."""
    return {
        "epochs": epochs,
        "device": "cpu",
        "log_every_steps": 1000,
        "checkpoint_every_epochs": 10_000,
    }


# --- Wen, Li & Ma 2023: XOR, two-layer ReLU nets, 1-SAM vs full-batch GD + weight decay ---

XOR_WIDTH = 500  # the paper's width
XOR_SAM_EPOCHS = 1000  # 1e5 batch-size-1 steps; the paper trains 1e5 epochs
XOR_GD_EPOCHS = 10_000  # full-batch steps (the spec's largest epoch count)
XOR_MODELS = {
    "nobias": {"first_bias": False, "norm": "none"},
    "bias": {"first_bias": True, "norm": "none"},
    "simln": {"first_bias": True, "norm": "sim_ln"},
}
# (1-SAM lr, ρ) and GD's lr per scenario (the paper's Table 2; Sim-LN at lr 0.1, ρ 0.1).
XOR_STEPS = {"nobias": (0.01, 0.05, 0.01), "bias": (0.01, 0.05, 0.01), "simln": (0.1, 0.1, 0.1)}


def _xor_preset(make: Callable[..., Any], scenario: str, claim: str) -> Any:
    sam_lr, rho, gd_lr = XOR_STEPS[scenario]
    model = {
        "name": "two_layer_relu",
        "width": XOR_WIDTH,
        "init": "pytorch",
        "train_output_layer": True,
        **XOR_MODELS[scenario],
    }
    trace = {"name": "hessian_trace", "probes": 100, "method": "hutchinson"}
    measure = {"num_examples": 100, "sharpness": [trace]}
    return make(
        f"wen_li_ma2023_{scenario}",
        f"XOR d=30 n=100, two-layer ReLU ({scenario}): 1-SAM vs full-batch GD + weight decay",
        "Wen, Li & Ma, NeurIPS 2023, Sharpness minimization algorithms do not only "
        "minimize sharpness to achieve better generalization",
        f"""The paper's scenario {claim}: x uniform on {{−1,1}}^30, y = x₁x₂, n = 100,
        MSE, PyTorch-default initialization, no output bias. 1-SAM (batch 1, lr
        {sam_lr}, ρ {rho}, no weight decay) against full-batch GD (lr {gd_lr}, weight
        decay 0.05), width {XOR_WIDTH} as in the paper. Scaled down in epochs only:
        1-SAM {XOR_SAM_EPOCHS} epochs ({XOR_SAM_EPOCHS * 100} steps) and GD
        {XOR_GD_EPOCHS} epochs (paper 1e5 each), so its verdicts hold at these
        budgets only. The Hessian
        trace by Hutchinson (100 Rademacher probes) on the 100 training examples;
        scripts/reproduce.py adds Lemma 4.1's (2/n)Σ‖∇_θ f(xᵢ)‖² and the 0–1 test
        error of sign(f) on 2000 fresh points and on the training set.""",
        metrics=("final_train_loss", "hessian_trace", "prediction_error"),
        base={
            "model": model,
            "data": {"name": "xor", "dim": 30, "n_train": 100, "n_test": 2000, "batch_size": 1},
            "optimizer": {"name": "sam", "rho": rho, "base": sgd(sam_lr)},
            "training": training(XOR_SAM_EPOCHS),
            "evaluate": {"every_epochs": XOR_SAM_EPOCHS // 10},
            "measure": {**measure, "every_epochs": XOR_SAM_EPOCHS},
        },
        axes={
            "config": [
                {"label": "1-SAM"},
                {
                    "label": "GD+wd",
                    "optimizer": {"name": "gd", "base": sgd(gd_lr, 0.05)},
                    "training": {"epochs": XOR_GD_EPOCHS},
                    "evaluate": {"every_epochs": XOR_GD_EPOCHS // 10},
                    "measure": {"every_epochs": XOR_GD_EPOCHS},
                },
            ]
        },
        seeds=SEEDS,
        baseline="GD+wd",
        tags=["preset", "wen_li_ma2023"],
    )


# --- Wen, Ma & Li 2023: the quadratic two-cycle and the 4-D toy ---

TWO_CYCLE_EIGENVALUES = [10.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.8, 0.6, 0.5]
TWO_CYCLE = {"lr": 0.05, "rho": 0.1, "steps": 1000}
TOY = {"lr": 0.05, "rho": 0.5, "steps": 1000}

# --- Oikonomou & Loizou 2025: the deterministic λ sweep and importance sampling ---

LAMBDAS = [0.0, 0.5, 1.0]
SWEEP_L = 10.0  # largest Hessian eigenvalue of the sweep's least squares (smallest 1)
SWEEP_STEPS = 10_000  # as the authors


def unified_theory_steps(lam: float, smoothness: float) -> tuple[float, float]:
    """(γ, ρ) of the authors' deterministic experiment: γ = 1/(8L); ρ = 1/(4L) at λ = 1,
    else min(1, 1/(2(1 − λ)²))/(4L)."""
    gamma = 1.0 / (8 * smoothness)
    if lam == 1.0:
        return gamma, 1.0 / (4 * smoothness)
    return gamma, min(1.0, 1.0 / (2 * (1 - lam) ** 2)) / (4 * smoothness)


def ridge_spectrum() -> list[float]:
    """The authors' importance-sampling spectrum: 1, 10 and 98 values drawn from U(1, 2)."""
    draw = random.Random(0)
    return [1.0, 10.0, *(round(draw.uniform(1.0, 2.0), 4) for _ in range(98))]


IMPORTANCE_LAMBDAS = [1.0]
IMPORTANCE_EPOCHS = 10  # 1000 batch-size-1 steps
RIDGE = 6.0 / 100  # weight decay 2·(3/n): the authors' λ_reg = 3/n on ½-scaled losses


def importance_smoothness() -> tuple[float, float]:
    """(L_max, L_avg) of the per-example losses (a_iᵀw − b_i)² + (wd/2)‖w‖²: L_i = nλ_i + wd."""
    spectrum = ridge_spectrum()
    n = len(spectrum)
    li = [n * lam + RIDGE for lam in spectrum]
    return max(li), sum(li) / n


def _two_cycle(make: Callable[..., Any]) -> Any:
    lr, rho, steps = TWO_CYCLE["lr"], TWO_CYCLE["rho"], int(TWO_CYCLE["steps"])
    return make(
        "wen_ma_li2023_two_cycle",
        "Full-batch SAM on ½wᵀHw: the period-2 oscillation along the top eigenvector",
        "Wen, Ma & Li, ICLR 2023, How does sharpness-aware minimization minimize sharpness?",
        f"""Theorem 4.8's setting: L(w) = ½wᵀHw (a linear model without bias on the
        `quadratic` data set, H with eigenvalues {TWO_CYCLE_EIGENVALUES}, rotated at
        random), full-batch SAM at η = {lr}, ρ = {rho} (ηλ₁ = {lr * 10:g} < 1) for
        {steps} steps from the PyTorch-default start. Predicted: ‖w_t‖ →
        ηρλ₁/(2 − ηλ₁) and |cos(∇L, v₁)| → 1. Not scaled down.""",
        metrics=("final_train_loss", "grad_eigvec_alignment"),
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
            "measure": {
                "every_epochs": steps,
                "num_examples": len(TWO_CYCLE_EIGENVALUES),
                "sharpness": ["grad_eigvec_alignment"],
            },
        },
        axes={"config": [{"label": "SAM"}]},
        seeds=SEEDS,
        baseline="SAM",
        tags=["preset", "wen_ma_li2023"],
    )


def _toy(make: Callable[..., Any]) -> Any:
    lr, rho, steps = TOY["lr"], TOY["rho"], int(TOY["steps"])
    return make(
        "wen_ma_li2023_toy",
        "The 4-D toy F₁x₃² + F₂x₄²: full-batch SAM → argmin λ₁, 1-SAM → argmin trace",
        "Wen, Ma & Li, ICLR 2023, How does sharpness-aware minimization minimize sharpness?",
        f"""Fig. 1's form, L = F₁(x₁,x₂)x₃² + F₂(x₁,x₂)x₄² with F₁ > F₂ > 0, with our own
        F₁, F₂ (the paper's are not available; `sam_core.models.toy`): argmin F₁ has
        x₁ = 1, argmin F₁ + F₂ has x₁ ≈ 0.546. Full-batch SAM (both terms) vs 1-SAM
        (one term per step), η = {lr}, ρ = {rho}, {steps} steps each, from a start
        drawn by the seed. Not scaled down (the paper gives no step count).""",
        metrics=("final_train_loss",),
        base={
            "model": {"name": "wen_ma_li_toy"},
            "data": {
                "name": "quadratic",
                "eigenvalues": [2.0, 2.0],
                "rotate": False,
                "batch_size": 1,
            },
            "optimizer": {"name": "sam", "rho": rho, "base": sgd(lr)},
            "training": training(steps // 2),
            "measure": {"every_epochs": steps // 2, "num_examples": 2},
        },
        axes={
            "config": [
                {
                    "label": "full-batch SAM",
                    "data": {"sampling": "full"},
                    "training": {"epochs": steps},
                    "measure": {"every_epochs": steps},
                },
                {"label": "1-SAM"},
            ]
        },
        seeds=SEEDS,
        baseline="full-batch SAM",
        tags=["preset", "wen_ma_li2023"],
    )


def _lambda_sweep(make: Callable[..., Any]) -> Any:
    eigenvalues = [1.0 + (SWEEP_L - 1.0) * i / 99 for i in range(100)]
    configs = []
    for lam in LAMBDAS:
        gamma, rho = unified_theory_steps(lam, SWEEP_L)
        configs.append(
            {
                "label": f"lam={lam:g}",
                "optimizer": {"lam": lam, "rho": rho, "base": sgd(gamma)},
            }
        )
    configs.append(
        {
            "label": "lam=1 decreasing",
            "optimizer": {
                "lam": 1.0,
                "rho": unified_theory_steps(1.0, SWEEP_L)[1],
                "rho_schedule": "unified",
                "base": sgd(unified_theory_steps(1.0, SWEEP_L)[0]),
                "schedule": {"name": "unified_decreasing", "mu": 1.0},
            },
        }
    )
    return make(
        "oikonomou2025_lambda",
        "Unified SAM, deterministic least squares: λ = 0 converges, λ > 0 stalls at a floor",
        "Oikonomou & Loizou, ICLR 2025, Sharpness-aware minimization: general analysis",
        f"""The authors' deterministic experiment: least squares, n = d = 100, Hessian
        eigenvalues evenly spaced in [1, {SWEEP_L:g}] (condition number 10), consistent
        b = Ax*, full gradient, λ ∈ {LAMBDAS} at the theory's steps γ = 1/(8L),
        ρ = min(1, 1/(2(1−λ)²))/(4L) (1/(4L) at λ = 1); plus λ = 1 with the decreasing
        steps γ_k = min(γ, (2k+1)/((k+1)²μ)), ρ_k = min(ρ, 1/(2k+1)). {SWEEP_STEPS}
        iterations, as the authors run: not scaled down.""",
        metrics=("final_train_loss",),
        base={
            "model": {"name": "linear", "bias": False},
            "data": {
                "name": "quadratic",
                "eigenvalues": eigenvalues,
                "targets": "consistent",
                "sampling": "full",
            },
            "optimizer": {"name": "unified_sam", "base": sgd(0.0125)},
            "training": training(SWEEP_STEPS),
            "measure": {"every_epochs": SWEEP_STEPS, "num_examples": 100},
        },
        axes={"config": configs},
        seeds=SEEDS,
        baseline="lam=0",
        tags=["preset", "oikonomou2025"],
    )


def _importance(make: Callable[..., Any]) -> Any:
    l_max, l_avg = importance_smoothness()
    steps = {"uniform": 1.0 / (8 * l_max), "importance": 1.0 / (8 * l_avg)}
    configs = []
    for lam in IMPORTANCE_LAMBDAS:
        for sampling, step_of in (
            ("uniform", "uniform"),
            ("importance", "importance"),
            ("importance", "uniform"),
        ):
            smooth = l_max if step_of == "uniform" else l_avg
            gamma, rho = unified_theory_steps(lam, smooth)
            configs.append(
                {
                    "label": f"lam={lam:g}·{sampling}·step={step_of}",
                    "data": {"sampling": sampling},
                    "optimizer": {"lam": lam, "rho": rho, "base": sgd(gamma, RIDGE)},
                }
            )
    return make(
        "oikonomou2025_importance",
        "Unified SAM with importance vs uniform sampling, each at its theoretical step",
        "Oikonomou & Loizou, ICLR 2025, Sharpness-aware minimization: general analysis",
        f"""The authors' ridge problem: n = d = 100, Hessian spectrum {{1, 10, 98 values
        in U(1, 2)}} (axis-aligned rows, so the per-example smoothness L_i = nλ_i + wd
        varies: L_max/L_avg = {l_max / l_avg:.2f}), ridge as weight decay {RIDGE:g}
        (perturbed too), batch 1, λ ∈ {IMPORTANCE_LAMBDAS}. Uniform sampling at
        γ = 1/(8L_max) = {steps["uniform"]:.3g}; importance sampling (p_i ∝ ‖a_i‖²,
        losses reweighted 1/(n p_i)) at its own γ = 1/(8L_avg) = {steps["importance"]:.3g}
        and at the uniform step; ρ by the same rule from the same L. Scaled down:
        {IMPORTANCE_EPOCHS} epochs ({IMPORTANCE_EPOCHS * 100} steps) and λ ∈
        {IMPORTANCE_LAMBDAS} of the authors' {{0, 0.5, 1}}.""",
        metrics=("final_train_loss",),
        base={
            "model": {"name": "linear", "bias": False},
            "data": {
                "name": "quadratic",
                "eigenvalues": ridge_spectrum(),
                "rotate": False,
                "targets": "consistent",
                "batch_size": 1,
            },
            "optimizer": {"name": "unified_sam", "perturb_weight_decay": True},
            "training": training(IMPORTANCE_EPOCHS),
            "measure": {"every_epochs": IMPORTANCE_EPOCHS, "num_examples": 100},
        },
        axes={"config": configs},
        seeds=SEEDS,
        baseline=f"lam={IMPORTANCE_LAMBDAS[0]:g}·uniform·step=uniform",
        tags=["preset", "oikonomou2025"],
    )


def paper_presets(make: Callable[..., Any]) -> list[Any]:
    """Wen, Li & Ma; Wen, Ma & Li; Oikonomou & Loizou (`flatlab.paper_presets_more` has
    Khanh et al. and Behdin & Mazumder)."""
    return [
        _xor_preset(make, "nobias", "I (no bias: flattest minimizers generalize)"),
        _xor_preset(make, "bias", "II (with bias: 1-SAM flatter, but generalizes worse)"),
        _xor_preset(make, "simln", "III (Sim-LN: 1-SAM generalizes)"),
        _two_cycle(make),
        _toy(make),
        _lambda_sweep(make),
        _importance(make),
    ]
