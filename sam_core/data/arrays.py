"""Checks on user arrays (x_train, y_train, x_test, y_test), with numpy only.

The API checks an uploaded `.npz` with these before it keeps it, and the
worker checks the file again when it loads it (`sam_core.data.npz`); the API
process never imports torch, so neither does this module. Nothing is
unpickled: archives are opened with `allow_pickle=False`, and `npz_headers`
reads each array's shape and dtype from its header, before any data, so a
small compressed file cannot make the reader allocate gigabytes.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sam_core.data.errors import DataError
from sam_core.spec.catalog import MAX_EXAMPLES

KEYS = ("x_train", "y_train", "x_test", "y_test")
READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}

MAX_RANK = 5  # (n, channels, height, width) and one spare axis


def npz_headers(path: Path, *, max_array_bytes: int) -> dict[str, dict[str, Any]]:
    """Shape and dtype of each array in the archive, read from the headers alone.

    Refuses a file that is not an .npz, an object (pickled) dtype, and arrays
    whose data would take more than `max_array_bytes` once decompressed.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return {
                info.filename.removesuffix(".npy"): _header(archive, info, max_array_bytes)
                for info in archive.infolist()
                if info.filename.endswith(".npy")
            }
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"not a readable .npz archive: {exc}") from exc


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> dict[str, Any]:
    key = info.filename.removesuffix(".npy")
    with archive.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version not in READERS:
                raise ValueError(f"format version {version} is not accepted")
            shape, _, dtype = READERS[version](stream)
        except ValueError as exc:
            raise DataError(f"{key} is not a readable .npy array: {exc}") from exc
    if dtype.hasobject:
        raise DataError(
            f"{key} holds Python objects (a pickled object array), which are not accepted: "
            "save numeric arrays"
        )
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size > limit:
        raise DataError(f"{key} would take {size} bytes in memory, more than the {limit} allowed")
    return {"shape": list(shape), "dtype": str(dtype)}


def validate_arrays(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """Check the four arrays; return what they hold.

    The summary has `task`, `num_outputs`, `input_shape`, `n_train` and `n_test`.
    Raises `DataError` naming the key and the problem. Works on an open `NpzFile`.
    """
    return checked_arrays(arrays)[1]


def checked_arrays(arrays: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The four arrays, loaded and checked, and the summary `validate_arrays` returns."""
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
        if len(x) > MAX_EXAMPLES:
            raise DataError(f"x_{split} has {len(x)} examples, more than {MAX_EXAMPLES}")
        if x.ndim > MAX_RANK:
            raise DataError(f"x_{split} has rank {x.ndim}, more than {MAX_RANK}: {x.shape}")
    x_train, x_test = loaded["x_train"], loaded["x_test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"x_train and x_test examples differ in shape: {x_train.shape[1:]} and "
            f"{x_test.shape[1:]}"
        )
    if 0 in x_train.shape[1:]:
        raise DataError(f"x_train examples are empty: shape {x_train.shape}")
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


MAX_CLASSES = 100_000


def _label_kind(y_train: np.ndarray, y_test: np.ndarray) -> tuple[str, int]:
    kinds = {y_train.dtype.kind, y_test.dtype.kind}
    if kinds <= {"i", "u"}:
        for key, y in (("y_train", y_train), ("y_test", y_test)):
            if y.ndim != 1:
                raise DataError(f"integer labels {key} must be 1-D class ids, got shape {y.shape}")
            if y.min() < 0:
                raise DataError(f"class ids in {key} must be ≥ 0, got {y.min()}")
            if y.max() >= MAX_CLASSES:
                raise DataError(f"class ids in {key} must be < {MAX_CLASSES}, got {y.max()}")
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
