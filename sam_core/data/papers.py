"""Data sets of the seed papers' own setups: the ±1 XOR hypercube and least squares
with a prescribed Hessian spectrum.

Every draw comes from generators seeded by `data_seed` (`seeded_generator`), one
stream each for the training set, the test set and the problem itself.
"""

from __future__ import annotations

import math

import torch

from sam_core.data.synthetic import TEACHER_STREAM, TEST_STREAM, TRAIN_STREAM, sign_inputs
from sam_core.data.task import TaskData, seeded_generator


def xor_teacher(x: torch.Tensor) -> torch.Tensor:
    """y = x₁·x₂ as a column, shape (n, 1)."""
    flat = x.flatten(1)
    return (flat[:, 0] * flat[:, 1]).unsqueeze(1)


def xor(params, data_dir=None) -> TaskData:
    """x uniform on {−1, 1}^d, y = x₁x₂, noiseless; a regression task trained with MSE.

    Wen, Li & Ma (2023, §5) use d = 30, n = 100; the test error they report is the
    0–1 error of sign(f) on fresh points (`sign_error`).
    """
    inputs = sign_inputs(params.dim)
    x_train = inputs(params.n_train, seeded_generator(params.data_seed, TRAIN_STREAM))
    x_test = inputs(params.n_test, seeded_generator(params.data_seed, TEST_STREAM))
    return TaskData(
        name="xor",
        description=f"±1 XOR hypercube, y = x₁x₂, d={params.dim}",
        x_train=x_train,
        y_train=xor_teacher(x_train),
        x_test=x_test,
        y_test=xor_teacher(x_test),
        task="regression",
        num_outputs=1,
        input_shape=(params.dim,),
        teacher=xor_teacher,
        sample_inputs=inputs,
    )


def sign_error(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """0–1 error of sign(f) against ±1 targets; f = 0 counts as an error."""
    return float((outputs.sign() != targets.sign()).double().mean())


def quadratic_design(params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, b, x*) in float64 with (2/n)AᵀA = V diag(eigenvalues) Vᵀ, n = d = len(eigenvalues).

    A = √(n/2) diag(√λ) Vᵀ, so row i has ‖a_i‖² = nλ_i/2 and the per-example
    smoothness of (a_iᵀw − b_i)² is 2‖a_i‖² = nλ_i. V is a random orthogonal matrix
    (QR of a Gaussian, signs fixed) or the identity; b = 0 or b = A x*, x* ~ N(0, I).
    """
    generator = seeded_generator(params.data_seed, TEACHER_STREAM)
    lam = torch.tensor(params.eigenvalues, dtype=torch.float64)
    n = len(lam)
    if params.rotate:
        q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
        v = q * torch.sign(torch.diagonal(r))
    else:
        v = torch.eye(n, dtype=torch.float64)
    a = math.sqrt(n / 2) * lam.sqrt().unsqueeze(1) * v.T
    x_star = torch.randn(n, generator=generator, dtype=torch.float64)
    if params.targets == "zero":
        x_star = torch.zeros(n, dtype=torch.float64)
    return a, a @ x_star, x_star


def quadratic(params, data_dir=None) -> TaskData:
    """Least squares (1/n)‖Aw − b‖² of `quadratic_design`; the test set is the training set.

    Train a linear model without bias on it: its loss is exactly
    ½(w − x*)ᵀH(w − x*) with H = V diag(eigenvalues) Vᵀ (0 at w = x*).
    """
    a, b, _ = quadratic_design(params)
    x, y = a.float(), b.float().unsqueeze(1)
    return TaskData(
        name="quadratic",
        description=f"least squares, {len(a)} rows, Hessian eigenvalues "
        f"{min(params.eigenvalues):g} to {max(params.eigenvalues):g}, b {params.targets}",
        x_train=x,
        y_train=y,
        x_test=x.clone(),
        y_test=y.clone(),
        task="regression",
        num_outputs=1,
        input_shape=(len(a),),
    )
