"""A study body: a base job spec, a search space over dotted spec paths, and the search's
sampler, pruner, budget and objective. Torch-free and Optuna-free: the API validates it
and `api.services.optuna_glue` turns it into Optuna objects.

The objective is a summary metric measured on the validation split
(`data.validation_fraction`): a test-set metric is refused, so tuning never reads the
test set (the protocol of DeepOBS, Schneider et al. 2019, and AlgoPerf, Dahl et al. 2023).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sam_core.spec import JobSpec, public_loc
from sam_core.spec.benchmark import BenchmarkInvalid, _set_path

__all__ = [
    "Budget",
    "Distribution",
    "Objective",
    "PrunerSpec",
    "SamplerSpec",
    "StudyBody",
    "StudyInvalid",
    "apply_params",
    "check_study",
    "intermediate_metric",
]

# the summary metrics a study may tune on (those of the validation split)
VALIDATION_METRICS = ("final_val_loss", "final_val_acc", "best_val_loss", "best_val_acc")


class StudyInvalid(ValueError):
    """The study cannot run; `errors` lists each problem with its field path."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


class Distribution(BaseModel):
    """One dimension of the search space.

    `log_uniform` and `uniform` draw a float in [low, high] (log_uniform on a log
    scale, low > 0); `int` an integer in [low, high] (`step`, `log` as Optuna's
    `IntDistribution`); `categorical` one of `choices` (any JSON values).
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["log_uniform", "uniform", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    step: int | None = Field(None, ge=1, description="int only")
    log: bool = Field(False, description="int only: a log scale")
    choices: list[Any] | None = Field(None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _bounds(self) -> Distribution:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs `choices`")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} dimension needs `low` and `high`")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise ValueError(f"need finite low ≤ high, got [{self.low}, {self.high}]")
        if self.type == "log_uniform" and self.low <= 0:
            raise ValueError(f"log_uniform needs low > 0, got {self.low}")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int dimension needs integer low and high")
        return self

    def example(self) -> Any:
        """A value of the dimension (its lower end or first choice), to check a path."""
        if self.type == "categorical":
            return copy.deepcopy(self.choices[0]) if self.choices else None
        return int(self.low or 0) if self.type == "int" else float(self.low or 0.0)


class SamplerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["tpe", "random", "grid", "qmc"] = "tpe"
    seed: int = Field(0, ge=0, le=2**31 - 1, description="the sampler's seed")
    n_startup_trials: int | None = Field(None, ge=0, le=10_000, description="tpe: random trials")


class PrunerSpec(BaseModel):
    """Optuna's MedianPruner, HyperbandPruner (successive halving), or none."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(4, ge=0, le=10_000, description="median: trials never pruned")
    n_warmup_steps: int = Field(0, ge=0, description="median: steps before pruning starts")
    min_resource: int | Literal["auto"] = Field("auto", description="hyperband")
    reduction_factor: int = Field(3, ge=2, le=100, description="hyperband")


MAX_TRIALS = 10_000  # a study never asks for more, whatever its budget


class Budget(BaseModel):
    """Trials, or gradient evaluations summed over the trials (`grad_evals` of their
    summaries; running trials are expected to cost the mean of the finished ones).
    Either way a study asks for at most `MAX_TRIALS` trials."""

    model_config = ConfigDict(extra="forbid")

    trials: int | None = Field(None, ge=1, le=MAX_TRIALS)
    grad_evals: float | None = Field(None, gt=0)
    parallel: int = Field(2, ge=1, le=256, description="trials running at once")

    @model_validator(mode="after")
    def _one(self) -> Budget:
        if (self.trials is None) == (self.grad_evals is None):
            raise ValueError("give budget.trials or budget.grad_evals (one of them)")
        return self


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field("final_val_loss", description="a summary metric of the validation split")
    direction: Literal["minimize", "maximize"] = "minimize"


class StudyBody(BaseModel):
    """What `POST /v1/studies` accepts."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=32)
    base: dict[str, Any] = Field(..., description="a job spec; trials set the searched paths")
    search_space: dict[str, Distribution] = Field(..., min_length=1, max_length=32)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    budget: Budget
    objective: Objective = Field(default_factory=Objective)
    reuse: bool = Field(True, description="a trial whose spec_hash has a succeeded job reuses it")


def intermediate_metric(metric: str) -> str:
    """The evaluation a summary metric summarises: `final_val_loss` → `val_loss`."""
    for prefix in ("final_", "best_"):
        if metric.startswith(prefix):
            return metric.removeprefix(prefix)
    return metric


def check_study(body: StudyBody) -> JobSpec:
    """The base spec with the search space's example values, validated; else `StudyInvalid`.

    Refuses a test-set objective (`objective.metric`), a base spec without a validation
    split (`base.data.validation_fraction`), a grid sampler over a continuous dimension,
    and a search path the optimizer/model/data block lacks (`search_space.optimizer.rho`
    beside SGD), each with its field.
    """
    metric = body.objective.metric
    if metric not in VALIDATION_METRICS:
        raise StudyInvalid(
            f"objective.metric {metric!r} is not a validation metric",
            [
                {
                    "loc": "objective.metric",
                    "msg": f"{metric!r} is not measured on the validation split; tuning never "
                    f"reads the test set. Use one of {', '.join(VALIDATION_METRICS)}",
                }
            ],
        )
    data = body.base.get("data")
    if not isinstance(data, dict) or not data.get("validation_fraction"):
        msg = "a study needs a validation split: set base.data.validation_fraction (e.g. 0.2)"
        raise StudyInvalid(msg, [{"loc": "base.data.validation_fraction", "msg": msg}])
    if body.sampler.name == "grid":
        for path, dist in body.search_space.items():
            if dist.type in ("uniform", "log_uniform") or (dist.type == "int" and dist.log):
                msg = "the grid sampler needs categorical or int dimensions"
                raise StudyInvalid(msg, [{"loc": f"search_space.{path}", "msg": msg}])
    example = {path: dist.example() for path, dist in body.search_space.items()}
    return apply_params(body.base, example)


def apply_params(base: dict[str, Any], params: dict[str, Any]) -> JobSpec:
    """`base` with each dotted path set to its value, validated as a `JobSpec`.

    Raises `StudyInvalid` naming `search_space.<path>` when a path does not exist or its
    value does not fit the spec (an `optimizer.rho` for SGD), `base.<field>` otherwise.
    """
    raw = copy.deepcopy(base)
    try:
        for path, value in params.items():
            _set_path(raw, path, copy.deepcopy(value))
    except BenchmarkInvalid as exc:
        errors = [{**e, "loc": f"search_space.{e['loc']}"} for e in exc.errors]
        raise StudyInvalid(errors[0]["msg"], errors) from None
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as exc:
        errors = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in public_loc(e["loc"]))
            where = f"search_space.{loc}" if loc in params else f"base.{loc}"
            errors.append({"loc": where, "msg": e["msg"]})
        raise StudyInvalid(
            "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5]), errors
        ) from None


class TunedOptimizer(BaseModel):
    """One optimizer of a tuned comparison: its block and its own search space (SGD has no ρ)."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(..., min_length=1, max_length=100)
    optimizer: dict[str, Any] = Field(..., description="the optimizer block of the job spec")
    search_space: dict[str, Distribution] = Field(..., min_length=1, max_length=32)


class TunedBody(BaseModel):
    """A tuned comparison (`POST /v1/benchmarks` with `mode: tuned`): each optimizer is
    tuned by a study on the same budget, then its best configuration re-runs over `seeds`."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["tuned"]
    name: str | None = Field(None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=32)
    base: dict[str, Any] = Field(..., description="a job spec with a validation split")
    optimizers: list[TunedOptimizer] = Field(..., min_length=1, max_length=16)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    budget: Budget = Field(..., description="each optimizer's study gets this same budget")
    objective: Objective = Field(default_factory=Objective)
    seeds: list[int] = Field(default_factory=lambda: list(range(10)), min_length=1, max_length=1000)
    baseline: str | None = Field(None, max_length=100, description="default: the first label")

    @model_validator(mode="after")
    def _labels(self) -> TunedBody:
        labels = [o.label for o in self.optimizers]
        if len(set(labels)) != len(labels):
            raise ValueError(f"optimizers need distinct labels, got {labels}")
        if self.baseline is not None and self.baseline not in labels:
            raise ValueError(f"baseline {self.baseline!r} is not one of {labels}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must be distinct")
        return self

    def study_bodies(self) -> list[tuple[str, StudyBody]]:
        """(label, the study body) per optimizer: the base with its block, its space."""
        out = []
        for item in self.optimizers:
            base = {**copy.deepcopy(self.base), "optimizer": copy.deepcopy(item.optimizer)}
            body = StudyBody(
                name=f"{self.name or 'tuned'}·{item.label}"[:200],
                tags=self.tags,
                base=base,
                search_space=item.search_space,
                sampler=self.sampler,
                pruner=self.pruner,
                budget=self.budget,
                objective=self.objective,
            )
            out.append((item.label, body))
        return out
