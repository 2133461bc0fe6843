"""The model registry: one entry per name in the catalog's MODELS, and the builder.

Each entry pairs the catalog's `Info` (name, title, parameter model) with the
function that builds the network. `build_model` validates the parameters
against the catalog, so a spec object, a plain mapping and keyword defaults all
build the same network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from torch import nn

from sam_core.spec.catalog import MODELS, Info
from sam_core.spec.optimizers import StrictModel

Builder = Callable[[Any, tuple[int, ...], int], nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its catalog entry and its builder."""

    info: Info
    build: Builder


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Register the builder of the catalog model `name`."""
    if name not in MODELS:
        raise ValueError(f"model {name!r} is not in the catalog's MODELS")

    def decorate(build: Builder) -> Builder:
        _REGISTRY[name] = ModelEntry(info=MODELS[name], build=build)
        return build

    return decorate


def list_models() -> list[str]:
    """Names of every buildable model, in catalog order."""
    return [name for name in MODELS if name in _REGISTRY]


def model_params(model_spec: BaseModel | Mapping[str, Any]) -> tuple[str, StrictModel]:
    """The model's name and its parameters, validated against the catalog."""
    raw = model_spec.model_dump() if isinstance(model_spec, BaseModel) else dict(model_spec)
    name = raw.pop("name", None)
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return name, _REGISTRY[name].info.params.model_validate(raw)


def build_model(
    model_spec: BaseModel | Mapping[str, Any], input_shape: tuple[int, ...], num_outputs: int
) -> nn.Module:
    """Build the network named by `model_spec` for inputs of `input_shape` (one example).

    Weights are initialised from torch's global generator: seed it (the trainer
    does, from `training.seed`) for a reproducible network. Only fixed random
    features (`random_features.feature_seed`) use a generator of their own.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or any(d < 1 for d in input_shape):
        raise ValueError(f"input_shape must be non-empty positive sizes, got {input_shape}")
    if num_outputs < 1:
        raise ValueError(f"num_outputs must be at least 1, got {num_outputs}")
    name, params = model_params(model_spec)
    return _REGISTRY[name].build(params, input_shape, num_outputs)


def describe_models() -> list[dict[str, Any]]:
    """Every model with its title, the JSON schema of its parameters and their defaults."""
    out = []
    for name in list_models():
        info = _REGISTRY[name].info
        out.append(
            {
                "name": name,
                "title": info.title,
                "schema": info.params.model_json_schema(),
                "defaults": info.params().model_dump(mode="json"),
            }
        )
    return out
