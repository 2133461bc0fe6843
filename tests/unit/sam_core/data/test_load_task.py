"""load_task over the catalog: every data set loads from a spec, and every model that
makes sense for it trains on it (a forward pass and a loss)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sam_core.data import DataError, describe_datasets, list_datasets, load_task
from sam_core.models import build_model
from sam_core.spec import JobSpec
from sam_core.spec.catalog import DATASETS, MODELS
from tests.unit.sam_core.data.conftest import images, write_batch

SMALL = {
    "teacher_student": {"n_train": 16, "n_test": 8},
    "kernel_regression": {"n_train": 16, "n_test": 8},
    "relu_teacher": {"n_train": 16, "n_test": 8},
    "sparse_parity": {"n_train": 16, "n_test": 8},
    "xor": {"n_train": 16, "n_test": 8, "dim": 6},
    "quadratic": {"eigenvalues": [2.0, 2.0], "rotate": False},  # the toy's e₁, e₂
    "digits": {},
    "npz": {"path": "tiny.npz"},
    "cifar10": {},
    "cifar100": {},
}
IMAGE_DATA = {"digits", "cifar10", "cifar100"}
IMAGE_MODELS = {"cnn", "resnet18", "wrn16"}
# The Wen-Ma-Li toy reads the one-hot inputs of a 2-D quadratic only.
INPUT_BOUND = {"wen_ma_li_toy": "quadratic"}
NARROW = {"resnet18": {"width": 8}, "wrn16": {"widen_factor": 1}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    np.savez(
        root / "tiny.npz",
        x_train=rng.normal(size=(12, 5)),
        y_train=rng.integers(0, 3, 12),
        x_test=rng.normal(size=(4, 5)),
        y_test=rng.integers(0, 3, 4),
    )
    ten, hundred = root / "cifar-10-batches-py", root / "cifar-100-python"
    ten.mkdir()
    hundred.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_batch(ten / name, images(2, 0), [3, 4])
    for name in ("train", "test"):
        write_batch(hundred / name, images(2, 0), [3, 97], label_key=b"fine_labels")
    return root


@pytest.fixture(scope="module")
def tasks(data_dir):
    return {name: load_task({"name": name, **SMALL[name]}, data_dir) for name in DATASETS}


def test_every_catalog_data_set_is_registered_and_described():
    assert list_datasets() == list(DATASETS)
    described = {d["name"]: d for d in describe_datasets()}
    assert described["npz"]["schema"]["required"] == ["path"]
    assert described["digits"]["task"] == "classification"


@pytest.mark.parametrize("name", list(DATASETS))
def test_loaded_tensors_follow_the_contract(tasks, name):
    task = tasks[name]
    assert task.task == DATASETS[name].task or DATASETS[name].task == "any"
    for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test)):
        assert x.dtype == torch.float32 and x.shape[1:] == task.input_shape and len(x) == len(y)
        if task.task == "classification":
            assert y.dtype == torch.int64 and y.ndim == 1 and y.max() < task.num_outputs
        else:
            assert y.dtype == torch.float32 and y.shape[1:] == (task.num_outputs,)
    assert (task.teacher is not None) == (
        name in ("teacher_student", "kernel_regression", "relu_teacher", "sparse_parity", "xor")
    )


PAIRS = [
    (model, data)
    for data in DATASETS
    for model in MODELS
    if (model not in IMAGE_MODELS or data in IMAGE_DATA)
    and (model not in INPUT_BOUND or data == INPUT_BOUND[model])
]


@pytest.mark.parametrize(("model_name", "data_name"), PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_model_trains_on_data(tasks, model_name, data_name):
    task = tasks[data_name]
    torch.manual_seed(0)
    spec = {"name": model_name, **NARROW.get(model_name, {})}
    model = build_model(spec, task.input_shape, task.num_outputs)
    x, y = task.x_train[:2], task.y_train[:2]
    if task.augment is not None:
        x = task.augment(x, torch.Generator().manual_seed(0))
    out = model(x)
    assert out.shape == (2, task.num_outputs)
    loss = F.cross_entropy(out, y) if task.task == "classification" else F.mse_loss(out, y)
    loss.backward()
    assert torch.isfinite(loss)


def test_the_job_spec_data_block_loads_as_is():
    spec = JobSpec.model_validate(
        {
            "model": {"name": "linear"},
            "data": {
                "name": "sparse_parity",
                "batch_size": 32,
                "sampling": "tau_nice",
                "tau": 8,
                "n_bits": 6,
                "k": 2,
                "label_noise": 0.25,
                "n_train": 100,
            },
            "optimizer": {"name": "sgd"},
        }
    )
    task = load_task(spec.data)
    assert task.x_train.shape == (100, 6)
    assert (task.y_train != task.teacher(task.x_train)).sum() == 25


def test_unknown_data_set_and_bad_params_are_data_errors():
    with pytest.raises(DataError, match=r"unknown data set 'mnist'; known: teacher_student"):
        load_task({"name": "mnist"})
    with pytest.raises(DataError, match=r"invalid parameters for data set 'digits'"):
        load_task({"name": "digits", "test_fraction": 2.0})
    assert issubclass(DataError, ValueError) and DataError.code == "invalid_data"
