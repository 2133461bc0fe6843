"""User arrays from an .npz file inside the data folder (checked by `sam_core.data.arrays`).

The file must hold x_train, y_train, x_test and y_test. Integer labels make a
classification task (classes 0 … max); float targets make a regression task.
Nothing is unpickled: `np.load(allow_pickle=False)` refuses object arrays.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from sam_core.data.arrays import KEYS, checked_arrays, validate_arrays
from sam_core.data.files import resolve_data_file
from sam_core.data.task import DataError, TaskData

__all__ = ["KEYS", "npz", "resolve_data_file", "validate_arrays"]


def npz(params, data_dir: Path | None = None) -> TaskData:
    path = resolve_data_file(data_dir, params.path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{params.path!r} is not a readable .npz file: {exc}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{params.path!r} is a single .npy array, not an .npz archive")
    with archive:
        try:
            loaded, summary = checked_arrays(archive)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(f"{params.path!r} is not a readable .npz file: {exc}") from exc
    classification = summary["task"] == "classification"

    def inputs(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x.reshape(len(x), *summary["input_shape"]), dtype=torch.float32)

    def labels(y: np.ndarray) -> torch.Tensor:
        if classification:
            return torch.as_tensor(y, dtype=torch.int64)
        return torch.as_tensor(y.reshape(len(y), -1), dtype=torch.float32)

    return TaskData(
        name="npz",
        description=f"arrays from {params.path}: {summary['n_train']} train / "
        f"{summary['n_test']} test, {summary['task']}",
        x_train=inputs(loaded["x_train"]),
        y_train=labels(loaded["y_train"]),
        x_test=inputs(loaded["x_test"]),
        y_test=labels(loaded["y_test"]),
        task=summary["task"],
        num_outputs=summary["num_outputs"],
        input_shape=summary["input_shape"],
    )
