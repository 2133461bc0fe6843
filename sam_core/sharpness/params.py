"""Checks a measure's parameters against its catalog entry (`sam_core.spec.catalog.MEASURES`)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from sam_core.spec.catalog import MEASURES
from sam_core.spec.optimizers import StrictModel

P = TypeVar("P", bound=StrictModel)


def validate_params(name: str, params_model: type[P], **params: Any) -> P:
    """The validated parameters, or a ValueError naming the bad parameter and its value."""
    if MEASURES[name].params is not params_model:
        raise TypeError(f"{name} is described by {MEASURES[name].params.__name__}")
    try:
        return params_model(**params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid parameters for measure {name!r}: {problems}") from None
