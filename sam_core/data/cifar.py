"""CIFAR-10 and CIFAR-100 from the python version of the files, and their augmentation.

The folders are those the CIFAR site's python tarballs untar to:
`cifar-10-batches-py/` (data_batch_1 … data_batch_5, test_batch) and
`cifar-100-python/` (train, test). The pickles are read by an unpickler that
can rebuild numpy arrays and plain containers and nothing else, so a doctored
file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam_core.data.files import CIFAR10, CIFAR100, CifarLayout, cifar_folder
from sam_core.data.task import DataError, TaskData

__all__ = ["CIFAR10", "CIFAR100", "CifarLayout", "CropFlip", "cifar10", "cifar100"]

SIDE = 32
PAD = 4


# What a CIFAR pickle may name: numpy's array reconstruction (under numpy 1 and
# 2 module names, pickle protocols 2–5) and harmless builtins.
_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}
_BUILTINS = {"list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int"}


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, lists, dicts and strings; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or (
            module in ("builtins", "__builtin__") and name in _BUILTINS
        ):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def restricted_load(data: bytes) -> Any:
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _read_batch(path: Path, layout: CifarLayout) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = restricted_load(path.read_bytes())
    except FileNotFoundError as exc:
        raise DataError(f"{layout.title} file missing: {path}") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a {layout.title} batch: {exc}") from exc
    if not isinstance(batch, dict):
        raise DataError(f"{path} is not a {layout.title} batch: expected a dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or layout.label_key not in batch:
        raise DataError(f"{path} lacks 'data' or {layout.label_key!r}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[layout.label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise DataError(
            f"{path}: 'data' must be uint8 of shape (n, 3072), got {data.dtype} {data.shape}"
        )
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: {layout.label_key!r} must be {len(data)} integer labels")
    if len(labels) and not 0 <= labels.min() <= labels.max() < layout.num_classes:
        raise DataError(f"{path}: labels must lie in 0 … {layout.num_classes - 1}")
    return data, labels


def _normalise(data: np.ndarray, layout: CifarLayout) -> torch.Tensor:
    x = torch.from_numpy(data).reshape(-1, 3, SIDE, SIDE).float().div_(255.0)
    mean = torch.tensor(layout.mean).view(1, 3, 1, 1)
    std = torch.tensor(layout.std).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def load_cifar(layout: CifarLayout, params, data_dir: Path | None) -> TaskData:
    """Per-channel normalised (3, 32, 32) images; `n_train` keeps the first n."""
    folder = cifar_folder(layout, data_dir)
    parts = [_read_batch(folder / name, layout) for name in layout.train_files]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    if params.n_train is not None:
        x_train, y_train = x_train[: params.n_train], y_train[: params.n_train]
    x_test, y_test = _read_batch(folder / layout.test_file, layout)
    black = tuple(-m / s for m, s in zip(layout.mean, layout.std, strict=True))
    return TaskData(
        name=layout.title.lower().replace("-", ""),
        description=f"{layout.title}, {len(y_train)} train / {len(y_test)} test",
        x_train=_normalise(x_train, layout),
        y_train=torch.from_numpy(y_train.astype(np.int64)),
        x_test=_normalise(x_test, layout),
        y_test=torch.from_numpy(y_test.astype(np.int64)),
        task="classification",
        num_outputs=layout.num_classes,
        input_shape=(3, SIDE, SIDE),
        augment=CropFlip(black) if params.augment else None,
    )


def cifar10(params, data_dir: Path | None = None) -> TaskData:
    return load_cifar(CIFAR10, params, data_dir)


def cifar100(params, data_dir: Path | None = None) -> TaskData:
    return load_cifar(CIFAR100, params, data_dir)


class CropFlip:
    """Random 32×32 crop of the image padded by 4 pixels, then a horizontal flip with
    probability ½ — the standard CIFAR augmentation, on a whole batch at once.

    The padding is black (pixel value 0 before normalisation, `fill` after), as
    torchvision's pipeline pads before it normalises. Offsets and flips are
    drawn from `generator` on its device, whatever device the batch is on.
    """

    def __init__(self, fill: tuple[float, ...]) -> None:
        self.fill = fill

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = x.shape
        padded = x.new_empty(n, c, h + 2 * PAD, w + 2 * PAD)
        padded[:] = torch.tensor(self.fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        padded[:, :, PAD : PAD + h, PAD : PAD + w] = x
        gen_device = generator.device
        offsets = torch.randint(0, 2 * PAD + 1, (2, n), generator=generator, device=gen_device)
        flip = torch.rand(n, generator=generator, device=gen_device) < 0.5
        offsets, flip = offsets.to(x.device), flip.to(x.device)
        rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (n, h)
        cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (n, w)
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        batch = torch.arange(n, device=x.device)[:, None, None]
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        return out.permute(0, 3, 1, 2).contiguous()
