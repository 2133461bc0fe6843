"""Every rule by name: ``create_optimizer`` builds one, ``describe_optimizers`` lists them.

Parameters, defaults and ranges live in ``sam_core.spec.optimizers.RULES``
(torch-free, shared with the API); this module maps each name to its class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from torch import nn

from sam_core.optim.base import make_base_optimizer
from sam_core.optim.engine import SharpnessAware
from sam_core.optim.rules.asam import Asam
from sam_core.optim.rules.esam import Esam
from sam_core.optim.rules.fsam import Fsam
from sam_core.optim.rules.gcsam import Gcsam
from sam_core.optim.rules.gsam import Gsam
from sam_core.optim.rules.looksam import LookSam
from sam_core.optim.rules.msam import Msam
from sam_core.optim.rules.rsam import Rsam
from sam_core.optim.rules.sam import Sam
from sam_core.optim.rules.sam_on import SamOn
from sam_core.optim.rules.sgd import Gd, Sgd
from sam_core.optim.rules.unified_sam import UnifiedSam
from sam_core.optim.rules.usam import Usam
from sam_core.optim.rules.vasso import Vasso
from sam_core.spec.optimizers import RULES, BaseOptimizerParams

OPTIMIZERS: dict[str, type[SharpnessAware]] = {
    rule.name: rule
    for rule in (
        Sgd, Gd, Sam, Usam, UnifiedSam, Asam, Msam, Vasso,
        Rsam, Gsam, Fsam, SamOn, LookSam, Esam, Gcsam,
    )
}  # fmt: skip


def list_optimizers() -> list[str]:
    return list(OPTIMIZERS)


def create_optimizer(
    name: str,
    params: nn.Module | Iterable[Any],
    base: Mapping[str, Any] | BaseOptimizerParams | None = None,
    max_grad_norm: float | None = None,
    *,
    seed: int | None = None,
    **rule_params: Any,
) -> SharpnessAware:
    """The rule ``name`` over ``params`` (a model, parameters or param groups).

    ``base`` is the optimizer that applies ĝ (default SGD, lr 0.1, momentum
    0.9, weight decay 5e-4). ``seed`` seeds RSAM's and ESAM's generator; by
    default it is drawn from torch's global generator.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    hp = _validate(RULES[name].params, rule_params, name, "")
    base_hp = _validate(BaseOptimizerParams, base or {}, name, "base.")
    if max_grad_norm is not None and not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be positive, got {max_grad_norm!r}")
    model = params if isinstance(params, nn.Module) else None
    groups = _param_groups(params)
    return OPTIMIZERS[name](
        make_base_optimizer(groups, base_hp),
        hp,
        model=model,
        max_grad_norm=max_grad_norm,
        seed=seed,
    )


def describe_optimizers() -> list[dict[str, Any]]:
    """Name, title, reference, passes and the JSON schema of the parameters of every rule."""
    return [
        {
            "name": info.name,
            "title": info.title,
            "reference": info.reference,
            "passes": info.passes,
            "params_schema": info.params.model_json_schema(),
        }
        for name, info in RULES.items()
        if name in OPTIMIZERS
    ]


def _validate(
    model: type[BaseModel], values: Mapping[str, Any] | BaseModel, rule: str, prefix: str
) -> Any:
    if isinstance(values, model):
        return values
    try:
        return model.model_validate(dict(values))  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(
            f"{prefix}{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}"
            for e in error.errors()
        )
        raise ValueError(f"invalid {rule} parameters: {problems}") from None


def _param_groups(params: nn.Module | Iterable[Any]) -> list[Any]:
    if isinstance(params, nn.Module):
        found: list[Any] = [p for p in params.parameters() if p.requires_grad]
    else:
        found = list(params)
    if not found:
        raise ValueError("the optimizer got no trainable parameters")
    return found
