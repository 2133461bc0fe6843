"""A fake CIFAR-10 folder in the real pickle format, a few images per batch."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

PER_BATCH = 4


def write_batch(path, images, labels, label_key=b"labels", protocol=2):
    # The real files are Python 2 pickles: bytes keys, a uint8 (n, 3072) array, a label list.
    batch = {b"batch_label": b"fake", label_key: labels, b"data": images, b"filenames": []}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


@pytest.fixture
def cifar10_dir(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        labels = [(i + j) % 10 for j in range(PER_BATCH)]
        write_batch(folder / f"data_batch_{i}", images(PER_BATCH, i), labels, protocol=2 + i % 4)
    write_batch(folder / "test_batch", images(3, 0), [0, 1, 2])
    return tmp_path
