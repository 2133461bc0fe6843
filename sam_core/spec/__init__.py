"""The training-job spec: one pydantic model, validated once, importable without torch.

The API validates a submitted spec with :class:`JobSpec`; the worker runs
exactly the validated, defaults-filled spec. Field names are the public contract (docs/api.md).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from sam_core.spec.catalog import DATASETS, EVAL_METRICS, MEASURES, MODELS, Info
from sam_core.spec.optimizers import (
    RULES,
    BaseOptimizerParams,
    ScheduleParams,
    StrictModel,
)

__all__ = [
    "DATASETS",
    "EVAL_METRICS",
    "MEASURES",
    "MODELS",
    "RULES",
    "Cadence",
    "DataSpec",
    "DistributedSpec",
    "EvaluateSpec",
    "JobSpec",
    "LimitsSpec",
    "MeasureItem",
    "MeasureSpec",
    "ModelSpec",
    "OptimizerSpec",
    "ResourcesSpec",
    "TrainingSpec",
    "public_loc",
    "spec_hash",
]


def _tagged_union(kind: str, table: dict[str, Any], extra_fields: dict[str, Any]) -> Any:
    """One model per catalog entry, discriminated by ``name``.

    A spec names its rule / model / data set and gives that entry's own
    parameters beside the name, so each entry becomes a model with a literal
    ``name`` and the entry's parameter fields; pydantic then reports an
    unknown name with the list of valid ones and a bad parameter at its path.
    """
    members = []
    for name, info in table.items():
        params = info.params
        fields: dict[str, Any] = {"name": (Literal[name], ...)}
        fields.update(extra_fields)
        model = create_model(  # type: ignore[call-overload]
            f"{kind}_{name}",
            __base__=params,
            __module__=__name__,
            **fields,
        )
        members.append(model)
    return Annotated[Union[tuple(members)], Field(discriminator="name")]  # noqa: UP007


_OPTIMIZER_FIELDS = {
    "label": (str | None, Field(None, max_length=100, description="name in comparisons")),
    "base": (BaseOptimizerParams, Field(default_factory=BaseOptimizerParams)),
    "schedule": (ScheduleParams, Field(default_factory=ScheduleParams)),
}


class _DataCommon(StrictModel):
    batch_size: int = Field(128, ge=1, le=65_536)
    sampling: Literal["uniform", "full", "tau_nice", "importance"] = "uniform"
    tau: int | None = Field(None, ge=1, le=65_536, description="`tau_nice`: subset size")
    reweight: bool = Field(True, description="`importance`: weight losses by 1/(n q_i)")
    label_noise: float = Field(0.0, ge=0.0, le=1.0, description="fraction of labels flipped")
    validation_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of the training examples held out (seeded by the data set's seed) "
        "as a validation split: val_loss / val_acc; studies tune on it, never on the test set",
    )


_DATA_FIELDS = {k: (f.annotation, f) for k, f in _DataCommon.model_fields.items()}

if TYPE_CHECKING:  # the unions are built at run time; to a type checker they are Any
    OptimizerSpec: TypeAlias = Any
    ModelSpec: TypeAlias = Any
    DataSpec: TypeAlias = Any
    MeasureItem: TypeAlias = Any
else:
    OptimizerSpec = _tagged_union("Optimizer", RULES, _OPTIMIZER_FIELDS)
    ModelSpec = _tagged_union("Model", MODELS, {})
    DataSpec = _tagged_union("Data", DATASETS, _DATA_FIELDS)
    MeasureItem = _tagged_union("Measure", MEASURES, {})


class TrainingSpec(StrictModel):
    epochs: int = Field(10, ge=1, le=10_000)
    max_steps: int | None = Field(None, ge=1, le=100_000_000, description="stop early at step")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    grad_clip: float | None = Field(None, gt=0.0, description="clip ‖ĝ‖ to this norm")
    log_every_steps: int = Field(10, ge=1, le=1_000_000)
    checkpoint_every_epochs: int = Field(1, ge=1, le=10_000)


class Cadence(StrictModel):
    """How often something runs: every `every_epochs` epochs or every `every_steps` steps.

    One of the two; neither means every epoch. It also runs once at the end.
    """

    every_epochs: int | None = Field(None, ge=1, le=10_000)
    every_steps: int | None = Field(None, ge=1, le=100_000_000)

    @model_validator(mode="after")
    def _one_of(self) -> Cadence:
        if self.every_epochs is not None and self.every_steps is not None:
            raise ValueError("give every_epochs or every_steps, not both")
        if self.every_epochs is None and self.every_steps is None:
            self.every_epochs = 1
        return self

    def due(self, step: int, steps_per_epoch: int) -> bool:
        """Whether it runs after optimizer step `step` (counted from 1)."""
        if self.every_steps is not None:
            return step % self.every_steps == 0
        epochs = self.every_epochs or 1
        return step % steps_per_epoch == 0 and (step // steps_per_epoch) % epochs == 0


class EvaluateSpec(Cadence):
    """When train/test loss and accuracy (and the teacher error) are taken."""


class MeasureSpec(Cadence):
    """When and which sharpness measures run, on which examples."""

    sharpness: list[MeasureItem] = Field(default_factory=list, max_length=32)
    num_examples: int = Field(
        2048, ge=1, le=200_000, description="fixed, unaugmented training examples for measures"
    )
    batch_size: int = Field(512, ge=1, le=65_536)

    @field_validator("sharpness", mode="before")
    @classmethod
    def _names_to_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value


class LimitsSpec(StrictModel):
    timeout_s: int | None = Field(
        None,
        ge=1,
        le=7 * 24 * 3600,
        description="wall-clock limit of an attempt; unset: the deployment's "
        "FLATLAB_JOB_TIMEOUT_SECONDS (no limit unless set)",
    )


class ResourcesSpec(StrictModel):
    """What one job occupies: `devices` ranks on each of `nodes` machines.

    `devices` > 1 trains data-parallel (PyTorch DDP, one rank per device); the
    global batch `data.batch_size` is split evenly over the `devices · nodes` ranks.
    """

    devices: int = Field(1, ge=1, le=64, description="ranks (GPUs, or CPU processes) per node")
    nodes: int = Field(1, ge=1, le=1, description="machines; one for now (see operations)")

    @property
    def world_size(self) -> int:
        return self.devices * self.nodes


class DistributedSpec(StrictModel):
    """How SAM and BatchNorm behave when `resources` asks for more than one rank."""

    sam: Literal["global", "local"] = Field(
        "global",
        description="global: ε from the all-reduced gradient (= SAM on the global batch); "
        "local: each rank's own ε (= m-SAM, m = per-rank batch)",
    )
    batchnorm: Literal["local", "sync"] = Field(
        "local", description="local: per-rank batch statistics; sync: SyncBatchNorm (GPU)"
    )
    timeout_s: int = Field(
        600, ge=10, le=24 * 3600, description="limit of every collective; a lost rank fails"
    )


#: Sections left out of the canonical form (and so of the hash) while at their defaults,
#: so a single-device spec hashes as it did before they existed.
_DEFAULT_OMITTED = {"resources": ResourcesSpec(), "distributed": DistributedSpec()}


class JobSpec(BaseModel):
    """A training job: what to train, on what, with which rule, and what to measure."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=32)
    model: ModelSpec
    data: DataSpec
    optimizer: OptimizerSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    distributed: DistributedSpec = Field(default_factory=DistributedSpec)

    @model_validator(mode="before")
    @classmethod
    def _evaluate_follows_measure(cls, data: Any) -> Any:
        """A spec without `evaluate` evaluates on the measures' cadence (as before they split)."""
        if isinstance(data, dict) and "evaluate" not in data:
            measure = data.get("measure")
            if isinstance(measure, dict):
                keys = ("every_epochs", "every_steps")
                cadence = {k: measure[k] for k in keys if measure.get(k) is not None}
                if len(cadence) == 1:  # two are refused at `measure`, not twice
                    return {**data, "evaluate": cadence}
        return data

    @field_validator("tags")
    @classmethod
    def _tags_are_short(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not 1 <= len(tag) <= 64:
                raise ValueError(f"each tag must have 1 to 64 characters, got {tag!r}")
        return tags

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        task = DATASETS[self.data.name].task
        for item in self.measure.sharpness:
            if MEASURES[item.name].task == "regression" and task == "classification":
                raise ValueError(
                    f"measure {item.name!r} needs a regression data set with a teacher, "
                    f"and {self.data.name!r} is a classification set"
                )
        if self.optimizer.name == "gd" and self.data.sampling not in ("uniform", "full"):
            raise ValueError("optimizer 'gd' uses the full batch; leave data.sampling unset")
        if self.data.sampling == "tau_nice" and self.data.tau is None:
            raise ValueError("data.sampling 'tau_nice' needs data.tau, the subset size")
        ranks = self.resources.world_size
        if ranks > 1 and self.data.batch_size % ranks:
            raise ValueError(
                f"data.batch_size {self.data.batch_size} does not split evenly over the "
                f"{ranks} ranks of resources (devices × nodes); pick a multiple of {ranks}"
            )
        return self

    @property
    def effective_sampling(self) -> str:
        return "full" if self.optimizer.name == "gd" else self.data.sampling

    def canonical(self) -> dict[str, Any]:
        """Everything that determines the result, defaults filled in.

        Sections at their defaults (`_DEFAULT_OMITTED`) and a zero
        `data.validation_fraction` are left out, so specs written before those
        fields existed keep their hash.
        """
        out = self.model_dump(mode="json", exclude={"name", "tags"})
        for key, default in _DEFAULT_OMITTED.items():
            if getattr(self, key) == default:
                del out[key]
        if not out["data"].get("validation_fraction"):
            out["data"].pop("validation_fraction", None)
        return out

    def hash(self) -> str:
        return spec_hash(self)


def spec_hash(spec: JobSpec) -> str:
    """SHA-256 of the canonical JSON: equal for specs that train the same thing."""
    text = json.dumps(spec.canonical(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def public_loc(loc: tuple[Any, ...] | list[Any]) -> list[str | int]:
    """A pydantic error location as users write it: drop the union tag pydantic adds.

    pydantic places the discriminator value in the path
    (``optimizer → sam → rho``); the user wrote ``optimizer.rho``.
    """
    out: list[str | int] = []
    for i, part in enumerate(loc):
        prev = loc[i - 1] if i else None
        if prev in ("optimizer", "model", "data") and _is_tag(prev, part):
            continue
        if isinstance(prev, int) and i >= 2 and loc[i - 2] == "sharpness" and part in MEASURES:
            continue
        out.append(part)
    return out


def _is_tag(kind: Any, part: Any) -> bool:
    tables: dict[str, dict[str, Info] | dict[str, Any]] = {
        "optimizer": RULES,
        "model": MODELS,
        "data": DATASETS,
    }
    return isinstance(part, str) and part in tables[kind]
