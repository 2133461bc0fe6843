"""A study's search space as Optuna distributions: shared by the API's driver and the plots.

A dimension is the JSON of `sam_core.spec.study.Distribution`: `log_uniform` / `uniform`
(`low`, `high`), `int` (`low`, `high`, `step`, `log`) or `categorical` (`choices`).
Optuna's categorical holds only None, bool, int, float and str, so other choices
(a list of layer widths) travel as their JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

PRIMITIVE = (type(None), bool, int, float, str)


def plain_choices(dim: Mapping[str, Any]) -> bool:
    return all(isinstance(c, PRIMITIVE) for c in dim.get("choices") or [])


def distribution(dim: Mapping[str, Any]) -> BaseDistribution:
    """The Optuna distribution of one dimension."""
    if dim["type"] == "categorical":
        choices = list(dim.get("choices") or [])
        if plain_choices(dim):
            return CategoricalDistribution(choices)
        return CategoricalDistribution([json.dumps(c, sort_keys=True) for c in choices])
    low, high = float(dim.get("low") or 0.0), float(dim.get("high") or 0.0)
    if dim["type"] == "int":
        return IntDistribution(
            int(low), int(high), log=bool(dim.get("log")), step=dim.get("step") or 1
        )
    return FloatDistribution(low, high, log=dim["type"] == "log_uniform")


def encode(space: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    """Spec values as Optuna params (non-plain categorical choices as JSON text)."""
    return {
        path: value
        if space[path]["type"] != "categorical" or plain_choices(space[path])
        else json.dumps(value, sort_keys=True)
        for path, value in params.items()
    }


def decode(space: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna params as spec values (JSON-text choices decoded)."""
    return {
        path: json.loads(value)
        if space[path]["type"] == "categorical" and not plain_choices(space[path])
        else value
        for path, value in params.items()
    }
