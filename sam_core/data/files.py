"""Where the file-backed data sets live in the data folder, checked without torch.

The CIFAR folder layouts and the `npz` path rules are here, importable
without torch, so that the API can refuse a job whose files are missing at
submission (the same checks the worker's loaders make before reading).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from sam_core.data.errors import DataError


@dataclass(frozen=True)
class CifarLayout:
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    label_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    url: str


CIFAR10 = CifarLayout(
    title="CIFAR-10",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch",
    label_key="labels",
    num_classes=10,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
)
CIFAR100 = CifarLayout(
    title="CIFAR-100",
    folder="cifar-100-python",
    train_files=("train",),
    test_file="test",
    label_key="fine_labels",
    num_classes=100,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
)
CIFAR_LAYOUTS = {"cifar10": CIFAR10, "cifar100": CIFAR100}


def cifar_folder(layout: CifarLayout, data_dir: Path | None) -> Path:
    """`<data_dir>/<layout.folder>`; DataError saying where to get it when it is absent."""
    how = (
        f"the python version from the CIFAR site ({layout.url}), untarred; "
        "set FLATLAB_DATA_DIR to the folder that holds it"
    )
    if data_dir is None:
        raise DataError(f"{layout.title} needs a data folder holding {layout.folder}/: {how}")
    folder = Path(data_dir) / layout.folder
    if not folder.is_dir():
        raise DataError(f"{layout.title} not found: expected {folder} ({how})")
    for name in (*layout.train_files, layout.test_file):
        if not (folder / name).is_file():
            raise DataError(f"{layout.title} file missing: {folder / name} ({how})")
    return folder


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
        raise DataError(
            f"data set file {name!r} not found in the data folder {root}: upload it "
            "(POST /v1/datasets) and use its id, or put the file there"
        )
    return path


def check_data_files(data: Any, data_dir: Path | None) -> tuple[str, str] | None:
    """For a spec's `data`: None when its files are present, else (field, message).

    `field` is `data.path` for `npz` and `data.name` for CIFAR; data sets
    without files (digits, the synthetic tasks) always pass.
    """
    try:
        if data.name == "npz":
            resolve_data_file(data_dir, data.path)
        elif data.name in CIFAR_LAYOUTS:
            cifar_folder(CIFAR_LAYOUTS[data.name], data_dir)
    except DataError as exc:
        return ("data.path" if data.name == "npz" else "data.name"), str(exc)
    return None
