"""User arrays from an .npz file inside the data folder, and the validator uploads share.

The file must hold x_train, y_train, x_test and y_test. Integer labels make a
classification task (classes 0 … max); float targets make a regression task.
Nothing is unpickled: `np.load(allow_pickle=False)` refuses object arrays.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import torch

from sam_core.data.task import DataError, TaskData

KEYS = ("x_train", "y_train", "x_test", "y_test")


def resolve_data_file(data_dir: Path | None, name: str, *, suffix: str = ".npz") -> Path:
    """The file `name` strictly inside `data_dir`; `suffix` is added when `name` lacks it.

    Absolute paths, `..` and symlinks that lead out of the folder are refused.
    """
    if data_dir is None:
        raise DataError(f"data set file {name!r} needs a data folder: set FLATLAB_DATA_DIR")
    parts = PurePosixPath(name).parts + PureWindowsPath(name).parts
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or ".." in parts:
        raise DataError(
            f"data set path {name!r} must be a file name inside the data folder, "
            "without '..' or an absolute path"
        )
    if not name.endswith(suffix):
        name += suffix
    root = Path(data_dir).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise DataError(f"data set path {name!r} leads outside the data folder {root}")
    if not path.is_file():
        raise DataError(f"data set file {name!r} not found in the data folder {root}")
    return path


def validate_arrays(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """Check the four arrays; return what they hold.

    The summary has `task`, `num_outputs`, `input_shape`, `n_train` and `n_test`.
    Raises `DataError` naming the key and the problem. Works on an open `NpzFile`.
    """
    return _checked(arrays)[1]


def _checked(arrays: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    missing = [key for key in KEYS if key not in arrays]
    if missing:
        raise DataError(f"missing key(s) {', '.join(missing)}; an .npz needs {', '.join(KEYS)}")
    loaded = {key: _numeric(key, arrays) for key in KEYS}
    for split in ("train", "test"):
        x, y = loaded[f"x_{split}"], loaded[f"y_{split}"]
        if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
            raise DataError(
                f"x_{split} and y_{split} must have the same length, got shapes {x.shape} "
                f"and {y.shape}"
            )
        if len(x) == 0:
            raise DataError(f"x_{split} is empty")
    x_train, x_test = loaded["x_train"], loaded["x_test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"x_train and x_test examples differ in shape: {x_train.shape[1:]} and "
            f"{x_test.shape[1:]}"
        )
    task, num_outputs = _label_kind(loaded["y_train"], loaded["y_test"])
    summary = {
        "task": task,
        "num_outputs": num_outputs,
        "input_shape": tuple(x_train.shape[1:]) or (1,),
        "n_train": len(x_train),
        "n_test": len(x_test),
    }
    return loaded, summary


def _numeric(key: str, arrays: Mapping[str, Any]) -> np.ndarray:
    try:
        array = np.asarray(arrays[key])
    except ValueError as exc:  # np.load refuses object arrays with allow_pickle=False
        raise DataError(
            f"{key} holds Python objects (a pickled object array), which are not accepted: "
            f"save numeric arrays ({exc})"
        ) from exc
    if array.dtype.kind not in "biuf":
        raise DataError(f"{key} must be a numeric array, got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{key} contains NaN or infinite values")
    return array


def _label_kind(y_train: np.ndarray, y_test: np.ndarray) -> tuple[str, int]:
    kinds = {y_train.dtype.kind, y_test.dtype.kind}
    if kinds <= {"i", "u"}:
        for key, y in (("y_train", y_train), ("y_test", y_test)):
            if y.ndim != 1:
                raise DataError(f"integer labels {key} must be 1-D class ids, got shape {y.shape}")
            if y.min() < 0:
                raise DataError(f"class ids in {key} must be ≥ 0, got {y.min()}")
        return "classification", int(max(y_train.max(), y_test.max())) + 1
    if kinds == {"f"}:
        if y_train.ndim > 2 or y_train.shape[1:] != y_test.shape[1:]:
            raise DataError(
                f"regression targets must be (n,) or (n, k) alike in y_train and y_test, "
                f"got {y_train.shape} and {y_test.shape}"
            )
        return "regression", int(y_train.shape[1]) if y_train.ndim == 2 else 1
    raise DataError(
        f"labels must be integers (classification) or floats (regression) in both splits, "
        f"got y_train {y_train.dtype} and y_test {y_test.dtype}"
    )


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
            loaded, summary = _checked(archive)
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
