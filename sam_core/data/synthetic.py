"""Synthetic tasks with a known ground truth: three regression teachers and sparse parity.

Every draw comes from generators seeded by `data_seed`, one stream each for the
teacher, the training set and the test set, so changing `n_train` leaves the
teacher and the test set as they were. With `noise_seed` set, the training
noise comes from a stream of its own, so a set of runs differing only in
`noise_seed` sees one teacher and one set of inputs (bias and variance over
noise). Regression targets are
y = teacher(x) + σ ε with ε ~ N(0, 1) on the training and the test set alike;
`teacher` gives the noiseless part.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from sam_core.data.task import DataError, TaskData, Teacher, seeded_generator

TEACHER_STREAM, TRAIN_STREAM, TEST_STREAM, NOISE_STREAM = 0, 1, 2, 3
REFERENCE_INPUTS = 4096

Inputs = Callable[[int, torch.Generator], torch.Tensor]


def gaussian_inputs(dim: int, scale: float = 1.0) -> Inputs:
    """x ~ N(0, scale² I_dim)."""

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        return scale * torch.randn(n, dim, generator=generator)

    return sample


def sign_inputs(dim: int) -> Inputs:
    """x uniform on {−1, +1}^dim."""

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, 2, (n, dim), generator=generator).float() * 2 - 1

    return sample


def _regression(name: str, description: str, params, teacher: Teacher, inputs: Inputs) -> TaskData:
    noise_seed = getattr(params, "noise_seed", None)

    def draw(n: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = seeded_generator(params.data_seed, stream)
        x = inputs(n, generator)
        clean = teacher(x)
        if noise_seed is not None and stream == TRAIN_STREAM:
            # Only the training noise moves with noise_seed: teacher and inputs stay.
            generator = seeded_generator(noise_seed, NOISE_STREAM)
        return x, clean + params.noise * torch.randn(clean.shape, generator=generator)

    x_train, y_train = draw(params.n_train, TRAIN_STREAM)
    x_test, y_test = draw(params.n_test, TEST_STREAM)
    return TaskData(
        name=name,
        description=description,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        task="regression",
        num_outputs=1,
        input_shape=(params.dim,),
        teacher=teacher,
        sample_inputs=inputs,
    )


def teacher_student(params, data_dir=None) -> TaskData:
    """x ~ N(0, I_d); a linear teacher w·x (w ~ N(0, I/d)) or a one-hidden-layer tanh
    teacher a·tanh(Wx) (W ~ N(0, I/d), a ~ N(0, I/width)), after Behdin & Mazumder 2023."""
    generator = seeded_generator(params.data_seed, TEACHER_STREAM)
    d, width = params.dim, params.teacher_width
    if params.teacher == "linear":
        w = torch.randn(d, 1, generator=generator) / math.sqrt(d)

        def teacher(x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1) @ w.to(x)

        shape = "linear teacher"
    else:
        hidden = torch.randn(d, width, generator=generator) / math.sqrt(d)
        a = torch.randn(width, 1, generator=generator) / math.sqrt(width)

        def teacher(x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(x.flatten(1) @ hidden.to(x)) @ a.to(x)

        shape = f"one-hidden-layer tanh teacher of width {width}"
    description = f"teacher–student regression, {shape}, d={d}, σ={params.noise}"
    return _regression("teacher_student", description, params, teacher, gaussian_inputs(d))


def kernel_regression(params, data_dir=None) -> TaskData:
    """x ~ N(0, I/d) (so ‖x‖ ≈ 1); teacher Σ_m α_m exp(−‖x − c_m‖² / 2h²) with centres
    c_m drawn like x and α ~ N(0, I), scaled so the teacher has unit standard deviation."""
    generator = seeded_generator(params.data_seed, TEACHER_STREAM)
    d, m, h = params.dim, params.num_centers, params.bandwidth
    inputs = gaussian_inputs(d, 1.0 / math.sqrt(d))
    centers = inputs(m, generator)
    alpha = torch.randn(m, 1, generator=generator)

    def teacher(x: torch.Tensor) -> torch.Tensor:
        sq = torch.cdist(x.flatten(1), centers.to(x)).pow(2)
        return torch.exp(-sq / (2 * h * h)) @ alpha.to(x)

    # How much an RBF sum varies over x depends strongly on h and d; scaling it to unit
    # standard deviation keeps σ the noise-to-signal ratio whatever they are.
    alpha /= teacher(inputs(REFERENCE_INPUTS, generator)).std().clamp_min(1e-12)

    description = f"kernel regression, RBF teacher with {m} centres, h={h}, d={d}, σ={params.noise}"
    return _regression("kernel_regression", description, params, teacher, inputs)


def relu_teacher(params, data_dir=None) -> TaskData:
    """x ~ N(0, I_d); teacher Σ_j a_j relu(w_j·x) with unit w_j and a_j = ±1/√m."""
    generator = seeded_generator(params.data_seed, TEACHER_STREAM)
    d, m = params.dim, params.teacher_width
    w = torch.randn(d, m, generator=generator)
    w = w / w.norm(dim=0, keepdim=True)
    a = (torch.randint(0, 2, (m, 1), generator=generator).float() * 2 - 1) / math.sqrt(m)

    def teacher(x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.flatten(1) @ w.to(x)) @ a.to(x)

    description = f"two-layer ReLU teacher of width {m}, d={d}, σ={params.noise}"
    return _regression("relu_teacher", description, params, teacher, gaussian_inputs(d))


def sparse_parity(params, data_dir=None) -> TaskData:
    """x uniform on {±1}^n_bits; the label is 1 when an odd number of the first k bits is −1."""
    if params.k > params.n_bits:
        raise DataError(f"sparse_parity needs k ≤ n_bits, got k={params.k}, n_bits={params.n_bits}")
    k = params.k
    inputs = sign_inputs(params.n_bits)

    def teacher(x: torch.Tensor) -> torch.Tensor:
        return ((x[:, :k] < 0).sum(1) % 2).long()

    x_train = inputs(params.n_train, seeded_generator(params.data_seed, TRAIN_STREAM))
    x_test = inputs(params.n_test, seeded_generator(params.data_seed, TEST_STREAM))
    return TaskData(
        name="sparse_parity",
        description=f"sparse parity of the first {k} of {params.n_bits} ±1 bits",
        x_train=x_train,
        y_train=teacher(x_train),
        x_test=x_test,
        y_test=teacher(x_test),
        task="classification",
        num_outputs=2,
        input_shape=(params.n_bits,),
        teacher=teacher,
        sample_inputs=inputs,
    )
