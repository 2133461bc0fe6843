"""CIFAR from a fake folder in the real pickle format; the safe unpickler; the augmentation."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from sam_core.data import DataError, load_task
from sam_core.data.cifar import CIFAR10, CropFlip
from tests.unit.sam_core.data.conftest import PER_BATCH, images, write_batch


def test_loads_the_python_version_with_normalised_channels(cifar10_dir):
    task = load_task({"name": "cifar10"}, cifar10_dir)
    assert task.x_train.shape == (5 * PER_BATCH, 3, 32, 32) and task.x_test.shape == (3, 3, 32, 32)
    assert task.input_shape == (3, 32, 32) and task.num_outputs == 10
    assert task.y_train.tolist() == [(i + j) % 10 for i in range(1, 6) for j in range(PER_BATCH)]
    raw = images(PER_BATCH, 1)[0]
    # Rows hold the red plane, then green, then blue, each 32×32 in row-major order.
    for channel in range(3):
        pixel = raw[channel * 1024 + 5 * 32 + 7] / 255.0
        expected = (pixel - CIFAR10.mean[channel]) / CIFAR10.std[channel]
        assert task.x_train[0, channel, 5, 7].item() == pytest.approx(expected, abs=1e-5)
    assert task.augment is not None


def test_n_train_keeps_the_first_examples_and_augment_can_be_off(cifar10_dir):
    full = load_task({"name": "cifar10"}, cifar10_dir)
    part = load_task({"name": "cifar10", "n_train": 6, "augment": False}, cifar10_dir)
    assert torch.equal(part.x_train, full.x_train[:6]) and part.augment is None


def test_cifar100_reads_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_batch(folder / "train", images(5, 1), [0, 99, 5, 7, 3], label_key=b"fine_labels")
    write_batch(folder / "test", images(2, 2), [42, 1], label_key=b"fine_labels")
    task = load_task({"name": "cifar100", "label_noise": 0.4}, tmp_path)
    assert task.num_outputs == 100 and task.y_test.tolist() == [42, 1]
    assert (task.y_train != torch.tensor([0, 99, 5, 7, 3])).sum() == 2


def test_missing_folder_names_the_folder_expected(tmp_path):
    with pytest.raises(DataError) as error:
        load_task({"name": "cifar10"}, tmp_path)
    message = str(error.value)
    assert f"CIFAR-10 not found: expected {tmp_path / 'cifar-10-batches-py'}" in message
    assert "python version" in message and "FLATLAB_DATA_DIR" in message
    with pytest.raises(DataError, match=r"cifar-100-python/.*FLATLAB_DATA_DIR"):
        load_task({"name": "cifar100"})


def test_missing_batch_is_named(cifar10_dir):
    (cifar10_dir / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"CIFAR-10 file missing: .*data_batch_3"):
        load_task({"name": "cifar10"}, cifar10_dir)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_would_run_code_is_refused(cifar10_dir):
    path = cifar10_dir / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": RunsCode(), b"labels": []}))
    with pytest.raises(
        DataError, match=r"not a CIFAR-10 batch: refusing to load (posix|nt)\.system"
    ):
        load_task({"name": "cifar10"}, cifar10_dir)


def test_crop_flip_returns_a_shifted_possibly_flipped_view_of_each_image():
    x = torch.randn(6, 3, 32, 32)
    fill = (-1.0, -2.0, -3.0)
    out = CropFlip(fill)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.empty(6, 3, 40, 40)
    padded[:] = torch.tensor(fill).view(1, 3, 1, 1)
    padded[:, :, 4:36, 4:36] = x
    for image, result in zip(padded, out, strict=True):
        crops = [
            crop
            for dy in range(9)
            for dx in range(9)
            for crop in (image[:, dy : dy + 32, dx : dx + 32],)
            for crop in (crop, crop.flip(-1))
        ]
        assert any(torch.equal(result, crop) for crop in crops)


def test_crop_flip_is_a_function_of_the_generator():
    x = torch.randn(64, 3, 32, 32)
    augment = CropFlip((0.0, 0.0, 0.0))
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    c = augment(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
