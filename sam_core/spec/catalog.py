"""Parameters of every model, data set and measure, without torch.

The spec validates against these models, the API lists them, and
``sam_core.models`` / ``sam_core.data`` / ``sam_core.sharpness`` build from them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sam_core.spec.optimizers import StrictModel

MAX_WIDTH = 65_536
MAX_CHANNELS = 4096
MAX_EXAMPLES = 2_000_000
MAX_SEED = 2**31 - 1
# Largest weight matrix between two hidden layers, and largest synthetic data set
# (examples × features), in numbers: 2^28 float32 is 1 GiB.
MAX_ELEMENTS = 2**28

Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class Info(BaseModel):
    """A catalog entry: its name, a line on what it is, and its parameters."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    params: type[StrictModel]
    task: Literal["classification", "regression", "any"] = "any"


# --- models -----------------------------------------------------------------


class LinearParams(StrictModel):
    bias: bool = True


class RandomFeaturesParams(StrictModel):
    num_features: int = Field(512, ge=1, le=MAX_WIDTH)
    bandwidth: float = Field(1.0, gt=0.0, description="random Fourier features of an RBF kernel")
    feature_seed: Seed = Field(0, description="seed of the fixed random features")


class OneHiddenParams(StrictModel):
    width: int = Field(64, ge=1, le=MAX_WIDTH)
    activation: Literal["tanh", "relu", "sigmoid"] = "tanh"


class TwoLayerReluParams(StrictModel):
    """f(x) = W₂·N(σ(W₁x [+ b₁])), never an output bias (Wen, Li & Ma 2023, §3)."""

    width: int = Field(64, ge=1, le=MAX_WIDTH)
    train_output_layer: bool = Field(
        True, description="false fixes the output weights W₂ (a buffer, not trained)"
    )
    first_bias: bool = Field(False, description="a bias b₁ in the first layer")
    activation: Literal["relu", "softplus"] = "relu"
    norm: Literal["none", "sim_bn", "sim_ln"] = Field(
        "none",
        description="sim_bn: each hidden unit divided by its RMS over the batch, times a "
        "learned γ (no mean subtraction); sim_ln: h/max(‖h‖, ε) per example",
    )
    init: Literal["mean_field", "pytorch"] = Field(
        "mean_field",
        description="mean_field: W₂ = ±1/width alternating in sign; pytorch: both layers "
        "keep nn.Linear's default (Kaiming-uniform) initialization",
    )
    eps: float = Field(1e-6, gt=0.0, le=1.0, description="ε of sim_ln and sim_bn")
    project_norm: float | None = Field(
        None,
        gt=0.0,
        le=1e6,
        description="keep ‖(W₁, b₁)‖_F equal to this after every step (and at the start)",
    )


class ToyParams(StrictModel):
    start: list[float] | None = Field(
        None,
        min_length=4,
        max_length=4,
        description="initial (x₁, x₂, x₃, x₄); none draws it from the training seed",
    )


class MlpParams(StrictModel):
    hidden: list[Width] = Field(default_factory=lambda: [256, 256], max_length=16)
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    batchnorm: bool = False

    @model_validator(mode="after")
    def _layers_fit(self) -> MlpParams:
        for i, (a, b) in enumerate(zip(self.hidden, self.hidden[1:], strict=False)):
            if a * b > MAX_ELEMENTS:
                raise ValueError(
                    f"hidden layers {i} and {i + 1} ({a} × {b}) need more than "
                    f"{MAX_ELEMENTS} weights; use narrower layers"
                )
        return self


class CnnParams(StrictModel):
    channels: list[Channels] = Field(default_factory=lambda: [32, 64], min_length=1, max_length=8)
    batchnorm: bool = True


class ResNetParams(StrictModel):
    width: int = Field(64, ge=4, le=512, description="channels of the first stage")


class WideResNetParams(StrictModel):
    widen_factor: int = Field(4, ge=1, le=16)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


MODELS: dict[str, Info] = {
    i.name: i
    for i in [
        Info(name="linear", title="Linear model (least squares or logistic)", params=LinearParams),
        Info(
            name="random_features",
            title="Random-features kernel regression",
            params=RandomFeaturesParams,
        ),
        Info(
            name="one_hidden",
            title="One-hidden-layer network (Behdin & Mazumder 2023)",
            params=OneHiddenParams,
        ),
        Info(
            name="two_layer_relu",
            title="Two-layer ReLU network (Wen, Li & Ma 2023)",
            params=TwoLayerReluParams,
        ),
        Info(
            name="wen_ma_li_toy",
            title="F₁(x₁,x₂)x₃² + F₂(x₁,x₂)x₄² toy (Wen, Ma & Li 2023, Fig. 1)",
            params=ToyParams,
        ),
        Info(name="mlp", title="Multi-layer perceptron", params=MlpParams),
        Info(name="cnn", title="Small CNN", params=CnnParams),
        Info(name="resnet18", title="ResNet-18, CIFAR form", params=ResNetParams),
        Info(name="wrn16", title="WideResNet-16, CIFAR form", params=WideResNetParams),
    ]
}

# --- data -------------------------------------------------------------------


class SyntheticParams(StrictModel):
    n_train: int = Field(256, ge=1, le=MAX_EXAMPLES)
    n_test: int = Field(1024, ge=1, le=MAX_EXAMPLES)
    dim: int = Field(16, ge=1, le=MAX_WIDTH)
    noise: float = Field(0.1, ge=0.0, le=100.0, description="σ of the label noise")
    data_seed: Seed = Field(0, description="seed of the teacher and the inputs")
    noise_seed: Seed | None = Field(
        None,
        description="draw the training noise from its own stream of this seed, so that "
        "runs differing only here share the teacher and every input (bias/variance)",
    )

    @model_validator(mode="after")
    def _fits_in_memory(self) -> SyntheticParams:
        _check_elements(self.n_train + self.n_test, self.dim, "dim")
        return self


class TeacherStudentParams(SyntheticParams):
    teacher: Literal["linear", "one_hidden"] = "one_hidden"
    teacher_width: int = Field(8, ge=1, le=MAX_WIDTH)


class KernelRegressionParams(SyntheticParams):
    num_centers: int = Field(32, ge=1, le=MAX_WIDTH, description="RBF centres of the teacher")
    bandwidth: float = Field(1.0, gt=0.0)


class XorParams(StrictModel):
    """x uniform on {−1, 1}^dim, y = x₁·x₂ (Wen, Li & Ma 2023, §5)."""

    n_train: int = Field(100, ge=1, le=MAX_EXAMPLES)
    n_test: int = Field(2000, ge=1, le=MAX_EXAMPLES)
    dim: int = Field(30, ge=2, le=MAX_WIDTH)
    data_seed: Seed = 0

    @model_validator(mode="after")
    def _fits_in_memory(self) -> XorParams:
        _check_elements(self.n_train + self.n_test, self.dim, "dim")
        return self


class QuadraticParams(StrictModel):
    """Least squares with a prescribed Hessian spectrum: n = d rows a_i, targets b.

    With a linear model without bias, the MSE (1/n)‖Aw − b‖² has the Hessian
    (2/n)AᵀA = V diag(eigenvalues) Vᵀ exactly.
    """

    eigenvalues: list[Annotated[float, Field(gt=0.0, le=1e6)]] = Field(
        default_factory=lambda: [1.0, 10.0], min_length=1, max_length=1024
    )
    rotate: bool = Field(True, description="V random orthogonal (else the identity)")
    targets: Literal["zero", "consistent"] = Field(
        "zero", description="zero: b = 0 (L = ½wᵀHw); consistent: b = A x*, x* ~ N(0, I)"
    )
    data_seed: Seed = 0


class ReluTeacherParams(SyntheticParams):
    teacher_width: int = Field(4, ge=1, le=MAX_WIDTH)


class SparseParityParams(StrictModel):
    n_train: int = Field(2048, ge=1, le=MAX_EXAMPLES)
    n_test: int = Field(1024, ge=1, le=MAX_EXAMPLES)
    n_bits: int = Field(20, ge=1, le=1024)
    k: int = Field(3, ge=1, le=64)
    data_seed: Seed = 0

    @model_validator(mode="after")
    def _fits_in_memory(self) -> SparseParityParams:
        _check_elements(self.n_train + self.n_test, self.n_bits, "n_bits")
        return self


def _check_elements(examples: int, features: int, name: str) -> None:
    if examples * features > MAX_ELEMENTS:
        raise ValueError(
            f"n_train + n_test = {examples} examples of {name} = {features} features make "
            f"{examples * features} numbers, more than {MAX_ELEMENTS}; make the set smaller"
        )


class DigitsParams(StrictModel):
    test_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    split_seed: Seed = 0


class NpzParams(StrictModel):
    path: str = Field(
        ...,
        min_length=1,
        max_length=255,
        description="file name under the data folder, or an uploaded dataset id",
    )


class CifarParams(StrictModel):
    augment: bool = True
    n_train: int | None = Field(None, ge=1, le=50_000, description="use only the first n")


DATASETS: dict[str, Info] = {
    i.name: i
    for i in [
        Info(
            name="teacher_student",
            title="Teacher–student regression with noise σ",
            params=TeacherStudentParams,
            task="regression",
        ),
        Info(
            name="kernel_regression",
            title="Noisy kernel regression (RBF teacher)",
            params=KernelRegressionParams,
            task="regression",
        ),
        Info(
            name="relu_teacher",
            title="Two-layer ReLU teacher",
            params=ReluTeacherParams,
            task="regression",
        ),
        Info(
            name="xor",
            title="±1 XOR hypercube, y = x₁x₂, MSE (Wen, Li & Ma 2023)",
            params=XorParams,
            task="regression",
        ),
        Info(
            name="quadratic",
            title="Least squares with a prescribed Hessian spectrum",
            params=QuadraticParams,
            task="regression",
        ),
        Info(
            name="sparse_parity",
            title="Sparse parity (k of n bits)",
            params=SparseParityParams,
            task="classification",
        ),
        Info(
            name="digits",
            title="scikit-learn digits (8×8, 10 classes)",
            params=DigitsParams,
            task="classification",
        ),
        Info(
            name="npz",
            title="Arrays from an .npz file (x_train, y_train, x_test, y_test)",
            params=NpzParams,
        ),
        Info(
            name="cifar10",
            title="CIFAR-10 from a local folder",
            params=CifarParams,
            task="classification",
        ),
        Info(
            name="cifar100",
            title="CIFAR-100 from a local folder",
            params=CifarParams,
            task="classification",
        ),
    ]
}

# --- measures ---------------------------------------------------------------


class NoMeasureParams(StrictModel):
    pass


class EigenParams(StrictModel):
    method: Literal["lanczos", "power"] = "lanczos"
    max_iter: int = Field(50, ge=1, le=1000)
    tol: float = Field(1e-3, gt=0.0, lt=1.0)
    top_k: int = Field(1, ge=1, le=50)
    warm_start: bool = Field(
        True,
        description="Lanczos starts from the previous evaluation's top eigenvectors "
        "(kept in checkpoints); false: every evaluation starts from a random vector",
    )


class TraceParams(StrictModel):
    probes: int = Field(100, ge=1, le=10_000, description="Hessian-vector products in all")
    method: Literal["hutchpp", "hutchinson"] = Field(
        "hutchpp",
        description="hutchpp: Hutch++ (a third of the products sketch the top of the "
        "spectrum, exact there); hutchinson: the mean of vᵀHv over Rademacher v",
    )


class DensityParams(StrictModel):
    iters: int = Field(50, ge=2, le=500)
    runs: int = Field(1, ge=1, le=50)


class WorstCaseParams(StrictModel):
    rho: float = Field(0.05, gt=0.0, le=100.0)
    steps: int = Field(10, ge=1, le=1000)


class AscentParams(StrictModel):
    rho: float = Field(0.05, gt=0.0, le=100.0)


class AverageParams(StrictModel):
    sigma: float = Field(0.01, gt=0.0, le=100.0)
    samples: int = Field(32, ge=1, le=10_000)


class AdaptiveParams(StrictModel):
    rho: float = Field(0.05, gt=0.0, le=100.0)
    eta: float = Field(0.01, ge=0.0, le=10.0)
    steps: int = Field(10, ge=1, le=1000)


class MSharpnessParams(StrictModel):
    rho: float = Field(0.05, gt=0.0, le=100.0)
    m: int = Field(32, ge=1, le=100_000)
    steps: int = Field(5, ge=1, le=1000)


class AlignmentParams(StrictModel):
    max_iter: int = Field(50, ge=1, le=1000)


class Landscape1dParams(StrictModel):
    points: int = Field(21, ge=3, le=201)
    span: float = Field(1.0, gt=0.0, le=100.0)


class Landscape2dParams(StrictModel):
    points: int = Field(11, ge=3, le=51)
    span: float = Field(1.0, gt=0.0, le=100.0)


MEASURES: dict[str, Info] = {
    i.name: i
    for i in [
        Info(
            name="hessian_top_eigenvalue",
            title="λ_max of the Hessian (Lanczos or power)",
            params=EigenParams,
        ),
        Info(
            name="hessian_trace", title="Hessian trace (Hutch++ or Hutchinson)", params=TraceParams
        ),
        Info(
            name="hessian_density",
            title="Eigenvalue density (stochastic Lanczos quadrature)",
            params=DensityParams,
        ),
        Info(
            name="worst_case_sharpness", title="max_{‖ε‖≤ρ} L(w+ε) − L(w)", params=WorstCaseParams
        ),
        Info(name="ascent_sharpness", title="L(w + ρ g/‖g‖) − L(w)", params=AscentParams),
        Info(
            name="average_sharpness", title="E L(w+ε) − L(w), ε ~ N(0, σ²I)", params=AverageParams
        ),
        Info(
            name="adaptive_sharpness",
            title="worst case over ‖ε/(|w|+η)‖ ≤ ρ",
            params=AdaptiveParams,
        ),
        Info(
            name="m_sharpness",
            title="mean over m-example chunks of worst-case sharpness",
            params=MSharpnessParams,
        ),
        Info(name="grad_eigvec_alignment", title="|cos(∇L, v₁)|", params=AlignmentParams),
        Info(
            name="loss_landscape_1d",
            title="loss along a filter-normalised direction",
            params=Landscape1dParams,
        ),
        Info(
            name="loss_landscape_2d",
            title="loss on a filter-normalised plane",
            params=Landscape2dParams,
        ),
        Info(
            name="prediction_error",
            title="mean squared distance to the noiseless teacher",
            params=NoMeasureParams,
            task="regression",
        ),
    ]
}

# Always recorded at every evaluation; not requested in `measure.sharpness`.
EVAL_METRICS = ("train_loss", "test_loss", "train_acc", "test_acc", "gen_gap_loss", "gen_gap_acc")
# Recorded at each evaluation of a run with a validation split (`data.validation_fraction`).
VALIDATION_EVAL_METRICS = ("val_loss", "val_acc")
