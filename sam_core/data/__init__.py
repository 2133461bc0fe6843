"""Data sets by catalog name, and the samplers that pick each step's examples.

`load_task(spec.data, data_dir)` returns a `TaskData`; `make_sampler(...)`
yields index batches. Every draw is seeded from the spec, through generators
of their own: nothing here touches torch's or numpy's global generators.
"""

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
from sam_core.data.task import DataError, TaskData

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
