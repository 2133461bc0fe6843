"""Which jobs can train together as one seed ensemble, decided from their specs alone.

Torch-free, so the API can group a benchmark's jobs when it enqueues them
and the worker can check a group before training it
(`sam_core.training.ensemble` trains the group).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sam_core.spec import JobSpec

# Rules written for stacked parameters (`sam_core.training.stacked`).
ENSEMBLE_RULES = ("sgd", "gd", "sam", "usam", "unified_sam")
# Models whose forward vmap takes as is: no BatchNorm statistics, no dropout.
ENSEMBLE_MODELS = ("linear", "random_features", "one_hidden", "two_layer_relu", "mlp")
# Spec fields members may differ in; every other field must be equal.
MEMBER_FIELDS = frozenset(
    {
        "training.seed",
        "optimizer.rho",
        "optimizer.lam",
        "optimizer.base.lr",
        "optimizer.base.momentum",
        "optimizer.base.weight_decay",
        "optimizer.base.betas",
        "optimizer.base.eps",
        "optimizer.schedule.min_lr",
        "optimizer.schedule.gamma",
        "optimizer.schedule.power",
        "optimizer.label",
        "limits.timeout_s",
    }
)


def can_ensemble(specs: Sequence[JobSpec]) -> tuple[bool, str]:
    """Whether `specs` can train as one ensemble; if not, the reason (else "")."""
    if not specs:
        return False, "an ensemble needs at least one job"
    reason = unsupported(specs[0])
    if reason:
        return False, reason
    first = flatten(specs[0].canonical())
    for k, spec in enumerate(specs[1:], start=1):
        other = flatten(spec.canonical())
        for path in sorted(set(first) | set(other)):
            if path not in MEMBER_FIELDS and first.get(path) != other.get(path):
                return False, (
                    f"job {k} differs from job 0 in {path} ({other.get(path)!r} vs "
                    f"{first.get(path)!r}); members may differ only in "
                    f"{', '.join(sorted(MEMBER_FIELDS))}"
                )
    return True, ""


def ensemble_groups(specs: Sequence[JobSpec], max_members: int) -> list[list[int]]:
    """Indices of `specs` split into groups that can each train as one ensemble.

    Specs equal outside `MEMBER_FIELDS` and supported by the stacked rules share
    a group, in order, at most `max_members` each; every other spec is a group
    of its own. `max_members` below 2 turns grouping off.
    """
    groups: dict[str, list[int]] = {}
    singles: list[list[int]] = []
    for i, spec in enumerate(specs):
        if max_members < 2 or unsupported(spec):
            singles.append([i])
            continue
        shared = {k: v for k, v in flatten(spec.canonical()).items() if k not in MEMBER_FIELDS}
        groups.setdefault(json.dumps(shared, sort_keys=True, default=str), []).append(i)
    out = [g[s : s + max_members] for g in groups.values() for s in range(0, len(g), max_members)]
    return sorted(out + singles, key=lambda g: g[0])


def unsupported(spec: JobSpec) -> str:
    """Why `spec`'s rule, model or precision cannot be vectorised, or ""."""
    rule = spec.optimizer.name
    if rule not in ENSEMBLE_RULES:
        return f"rule {rule!r} is not vectorised; ensembles support {', '.join(ENSEMBLE_RULES)}"
    model = spec.model.name
    if model not in ENSEMBLE_MODELS:
        return (
            f"model {model!r} cannot be ensembled; ensembles support {', '.join(ENSEMBLE_MODELS)}"
        )
    if getattr(spec.model, "batchnorm", False):
        return "models with BatchNorm cannot be ensembled (running statistics are per member)"
    if getattr(spec.optimizer, "rho_schedule", "constant") in ("power", "unified"):
        return "ensembles follow rho_schedule constant or lr only"
    if getattr(spec.model, "project_norm", None) is not None:
        return "models with a norm projection after each step cannot be ensembled"
    if spec.training.precision != "fp32":
        return f"precision {spec.training.precision!r}: ensembles train in fp32 only"
    if spec.resources.world_size > 1:
        return "data-parallel jobs (resources.devices > 1) run alone, not in an ensemble"
    return ""


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a.b": value}` for every leaf of a nested dict."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out
