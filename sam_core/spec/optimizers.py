"""Parameters of every update rule of the SAM family, without torch.

Each rule is a pydantic model: the spec validates against it, the API lists
its JSON schema, and ``sam_core.optim`` builds the rule from it. The defaults
and ranges are those of docs/optimizers.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Rho = Annotated[float, Field(ge=0.0, le=100.0, description="perturbation radius ρ")]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]


class StrictModel(BaseModel):
    """Rejects unknown fields, so a typo in a spec is an error, not a silent default.

    NaN and infinity are refused too: Python's JSON reader accepts them, and no
    parameter means anything at either.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BaseOptimizerParams(StrictModel):
    """The optimizer that applies ĝ: SGD (momentum, Nesterov, weight decay) or AdamW."""

    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0.0, le=100.0, description="learning rate")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    nesterov: bool = False
    weight_decay: float = Field(5e-4, ge=0.0, le=1.0)
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0, le=1.0)


class ScheduleParams(StrictModel):
    """Learning-rate schedule over the whole run, with linear warm-up.

    Khanh et al. (2024)'s schedules are stepped per epoch k (from 0) and are factors
    of the base learning rate lr: `diminish1` lr/(k+1), `diminish2` lr/(k+1)^0.5001,
    `diminish3` lr/(m ln m) with m = 3 + ⌊k/5⌋ (their 0.1/(m ln m) at lr = 0.1).
    `unified_decreasing` is Oikonomou & Loizou (2025)'s γ_t = min(lr, (2t+1)/((t+1)²μ))
    per step t (from 0).
    """

    name: Literal[
        "constant",
        "cosine",
        "step",
        "linear",
        "diminishing",
        "diminish1",
        "diminish2",
        "diminish3",
        "unified_decreasing",
    ] = "constant"
    warmup_steps: int = Field(0, ge=0, le=10_000_000)
    min_lr: float = Field(0.0, ge=0.0, description="floor of cosine and linear decay")
    step_size_epochs: int = Field(
        30, ge=1, le=10_000, description="`step`: decay every this many epochs"
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="`step`: decay factor")
    power: float = Field(
        0.5, gt=0.0, le=2.0, description="`diminishing`: lr_t = lr / (1 + t)^power"
    )
    mu: float = Field(
        1.0, gt=0.0, le=1e6, description="`unified_decreasing`: μ, the strong-convexity constant"
    )


class RuleParams(StrictModel):
    """Fields shared by every rule that perturbs the weights."""

    rho: Rho = 0.05
    rho_schedule: Literal["constant", "lr", "power", "unified"] = Field(
        "constant",
        description="`lr`: ρ_t = ρ · lr_t / lr_0, as GSAM ties ρ to the learning rate; "
        "`power`: ρ_t = ρ/(t+1)^rho_power (Khanh et al. 2024's C/k^p, k = t+1); "
        "`unified`: ρ_t = min(ρ, 1/(2t+1)) (Oikonomou & Loizou 2025); t counts steps from 0",
    )
    rho_power: float = Field(0.5, gt=0.0, le=4.0, description="p of `rho_schedule: power`")
    perturb_weight_decay: bool = Field(
        False, description="add the L2 term to g before ε (Foret et al.'s JAX code)"
    )

    def rho_at(self, step: int, lr_ratio: float) -> float:
        """ρ_t at step t (steps already taken); `lr_ratio` is lr_t/lr_0 (for `lr`)."""
        rho = float(getattr(self, "rho", 0.0))
        if self.rho_schedule == "lr":
            return rho * lr_ratio
        if self.rho_schedule == "power":
            return rho / (step + 1) ** self.rho_power
        if self.rho_schedule == "unified":
            return min(rho, 1.0 / (2 * step + 1))
        return rho


class NoParams(StrictModel):
    pass


class SamParams(RuleParams):
    pass


class UsamParams(RuleParams):
    pass


class UnifiedSamParams(RuleParams):
    lam: float = Field(0.5, ge=0.0, le=1.0, description="λ: 1 is SAM, 0 is USAM")
    lam_schedule: Literal["constant", "one_minus_inv_t", "inv_t"] = Field(
        "constant", description="λ_t = λ, 1 − 1/t or 1/t (t counts steps from 1)"
    )


class AsamParams(RuleParams):
    rho: Rho = 0.5
    eta: float = Field(0.01, ge=0.0, le=10.0, description="η in T = |w| + η")
    scale_biases: bool = Field(
        True,
        description="false leaves the parameters modules register as `bias` unscaled (T = 1), "
        "as the authors' code does; norm-layer weights stay scaled",
    )


class MsamParams(RuleParams):
    m: int = Field(32, ge=1, le=1_000_000, description="examples per chunk")


class VassoParams(RuleParams):
    theta: float = Field(0.9, gt=0.0, le=1.0, description="θ of the gradient EMA d_t")


class RsamParams(RuleParams):
    sigma: float = Field(0.01, ge=0.0, le=10.0, description="σ of the random pre-perturbation")


class GsamParams(RuleParams):
    alpha: float = Field(0.4, ge=0.0, le=10.0, description="weight of the orthogonal ascent part")


class FsamParams(RuleParams):
    rho: Rho = 0.2
    sigma: float = Field(1.0, ge=0.0, le=10.0, description="σ: how much of the EMA to remove")
    beta: float = Field(0.6, ge=0.0, lt=1.0, description="β of the gradient EMA m_t")


class SamOnParams(RuleParams):
    rho: Rho = 0.5
    base_rule: Literal["sam", "asam"] = "sam"
    eta: float = Field(0.01, ge=0.0, le=10.0, description="η when base_rule is asam")


class LookSamParams(RuleParams):
    k: int = Field(5, ge=1, le=10_000, description="a full SAM step every k steps")
    alpha: float = Field(0.7, ge=0.0, le=100.0)


class EsamParams(RuleParams):
    beta: float = Field(0.6, gt=0.0, le=1.0, description="probability a tensor is perturbed")
    gamma: float = Field(0.5, gt=0.0, le=1.0, description="fraction of examples kept")


class GcsamParams(RuleParams):
    pass


class RuleInfo(BaseModel):
    """What the catalog says of a rule."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    reference: str
    passes: str
    params: type[StrictModel]


RULES: dict[str, RuleInfo] = {
    info.name: info
    for info in [
        RuleInfo(
            name="sgd", title="SGD", reference="mini-batch baseline", passes="1", params=NoParams
        ),
        RuleInfo(
            name="gd",
            title="Gradient descent",
            reference="full-batch baseline",
            passes="1",
            params=NoParams,
        ),
        RuleInfo(
            name="sam",
            title="SAM",
            reference="Foret et al., ICLR 2021",
            passes="2",
            params=SamParams,
        ),
        RuleInfo(
            name="usam",
            title="Unnormalized SAM",
            reference="Andriushchenko & Flammarion, ICML 2022",
            passes="2",
            params=UsamParams,
        ),
        RuleInfo(
            name="unified_sam",
            title="Unified SAM",
            reference="Oikonomou & Loizou, ICLR 2025",
            passes="2",
            params=UnifiedSamParams,
        ),
        RuleInfo(
            name="asam",
            title="Adaptive SAM",
            reference="Kwon et al., ICML 2021",
            passes="2",
            params=AsamParams,
        ),
        RuleInfo(
            name="msam",
            title="m-SAM",
            reference="Foret et al. 2021, §4",
            passes="2",
            params=MsamParams,
        ),
        RuleInfo(
            name="vasso",
            title="VaSSO",
            reference="Li & Giannakis, NeurIPS 2023",
            passes="2",
            params=VassoParams,
        ),
        RuleInfo(
            name="rsam",
            title="Random SAM",
            reference="Liu et al., NeurIPS 2022",
            passes="2",
            params=RsamParams,
        ),
        RuleInfo(
            name="gsam",
            title="GSAM",
            reference="Zhuang et al., ICLR 2022",
            passes="2",
            params=GsamParams,
        ),
        RuleInfo(
            name="fsam",
            title="Friendly SAM",
            reference="Li et al., CVPR 2024",
            passes="2",
            params=FsamParams,
        ),
        RuleInfo(
            name="sam_on",
            title="SAM-ON",
            reference="Mueller et al., NeurIPS 2023",
            passes="2",
            params=SamOnParams,
        ),
        RuleInfo(
            name="looksam",
            title="LookSAM",
            reference="Liu et al., CVPR 2022",
            passes="1 + 1/k",
            params=LookSamParams,
        ),
        RuleInfo(
            name="esam",
            title="Efficient SAM",
            reference="Du et al., ICLR 2022",
            passes="< 2",
            params=EsamParams,
        ),
        RuleInfo(
            name="gcsam",
            title="Gradient-centralized SAM",
            reference="Hassan et al., 2025",
            passes="2",
            params=GcsamParams,
        ),
    ]
}
