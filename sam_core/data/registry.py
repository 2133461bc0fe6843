"""Data sets by catalog name: `load_task(spec.data, data_dir)`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sam_core.data import cifar, digits, npz, papers, synthetic
from sam_core.data.label_noise import with_label_noise
from sam_core.data.task import DataError, TaskData
from sam_core.data.validation import with_validation_split
from sam_core.spec.catalog import DATASETS

Loader = Callable[[Any, Path | None], TaskData]

LOADERS: dict[str, Loader] = {
    "teacher_student": synthetic.teacher_student,
    "kernel_regression": synthetic.kernel_regression,
    "relu_teacher": synthetic.relu_teacher,
    "xor": papers.xor,
    "quadratic": papers.quadratic,
    "sparse_parity": synthetic.sparse_parity,
    "digits": digits.digits,
    "npz": npz.npz,
    "cifar10": cifar.cifar10,
    "cifar100": cifar.cifar100,
}

# Fields of `spec.data` that say how to sample and corrupt, not what to load.
SAMPLING_FIELDS = (
    "batch_size",
    "sampling",
    "tau",
    "reweight",
    "label_noise",
    "validation_fraction",
)


def list_datasets() -> list[str]:
    return [name for name in DATASETS if name in LOADERS]


def load_task(data_spec: BaseModel | Mapping[str, Any], data_dir: Path | None = None) -> TaskData:
    """Load the data set `data_spec` names, with its label noise applied and its
    validation split (`validation_fraction`) carved from the (noisy) training set.

    `data_dir` is the folder of files (CIFAR folders, .npz files); synthetic
    sets and digits need none. Everything is a function of the spec's seeds.
    """
    raw = data_spec.model_dump() if isinstance(data_spec, BaseModel) else dict(data_spec)
    name = raw.pop("name", None)
    if name not in LOADERS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(list_datasets())}")
    label_noise = raw.get("label_noise") or 0.0
    validation = raw.get("validation_fraction") or 0.0
    for key in SAMPLING_FIELDS:
        raw.pop(key, None)
    try:
        params = DATASETS[name].params.model_validate(raw)
    except ValidationError as exc:
        raise DataError(f"invalid parameters for data set {name!r}: {exc}") from exc
    task = LOADERS[name](params, Path(data_dir) if data_dir is not None else None)
    # The noise follows the data set's own seed, so every run on the set sees the same labels.
    seed = getattr(params, "data_seed", getattr(params, "split_seed", 0))
    task = with_label_noise(task, float(label_noise), seed)
    return with_validation_split(task, float(validation), seed)


def describe_datasets() -> list[dict[str, Any]]:
    """Every data set with its title, task and the JSON schema of its parameters."""
    return [
        {
            "name": name,
            "title": DATASETS[name].title,
            "task": DATASETS[name].task,
            "schema": DATASETS[name].params.model_json_schema(),
        }
        for name in list_datasets()
    ]
