"""Data sets by catalog name, and the samplers that pick each step's examples.

`load_task(spec.data, data_dir)` returns a `TaskData`; `make_sampler(...)`
yields index batches. Every draw is seeded from the spec, through generators
of their own: nothing here touches torch's or numpy's global generators.

The names below load on first use, so that `sam_core.data.arrays` (numpy
only, used by the API to check uploads) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sam_core.data.errors import DataError
    from sam_core.data.npz import resolve_data_file, validate_arrays
    from sam_core.data.registry import describe_datasets, list_datasets, load_task
    from sam_core.data.samplers import (
        Batch,
        FullSampler,
        ImportanceSampler,
        Sampler,
        TauNiceSampler,
        UniformSampler,
        linear_importance,
        make_sampler,
    )
    from sam_core.data.task import TaskData

_HOMES = {
    "Batch": "samplers",
    "DataError": "errors",
    "FullSampler": "samplers",
    "ImportanceSampler": "samplers",
    "Sampler": "samplers",
    "TaskData": "task",
    "TauNiceSampler": "samplers",
    "UniformSampler": "samplers",
    "describe_datasets": "registry",
    "linear_importance": "samplers",
    "list_datasets": "registry",
    "load_task": "registry",
    "make_sampler": "samplers",
    "resolve_data_file": "npz",
    "validate_arrays": "arrays",
}

__all__ = [
    "Batch",
    "DataError",
    "FullSampler",
    "ImportanceSampler",
    "Sampler",
    "TaskData",
    "TauNiceSampler",
    "UniformSampler",
    "describe_datasets",
    "linear_importance",
    "list_datasets",
    "load_task",
    "make_sampler",
    "resolve_data_file",
    "validate_arrays",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
