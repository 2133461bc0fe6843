"""User .npz files: found only inside the data folder, validated with clear messages."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from sam_core.data import DataError, load_task, validate_arrays


def arrays(n_train=20, n_test=10, labels="int"):
    rng = np.random.default_rng(0)
    make_y = {
        "int": lambda n: rng.integers(0, 3, n),
        "float": lambda n: rng.normal(size=(n, 2)).astype(np.float32),
    }[labels]
    return {
        "x_train": rng.normal(size=(n_train, 4, 2)),
        "y_train": make_y(n_train),
        "x_test": rng.normal(size=(n_test, 4, 2)),
        "y_test": make_y(n_test),
    }


def save(tmp_path, name="set.npz", **data):
    np.savez(tmp_path / name, **data)
    return name


def test_integer_labels_load_as_classification(tmp_path):
    data = arrays()
    name = save(tmp_path, **data)
    task = load_task({"name": "npz", "path": name}, tmp_path)
    assert task.task == "classification"
    assert task.num_outputs == int(max(data["y_train"].max(), data["y_test"].max())) + 1
    assert task.input_shape == (4, 2) and task.x_train.dtype == torch.float32
    assert task.y_train.dtype == torch.int64 and task.y_train.shape == (20,)


def test_float_labels_load_as_regression_and_the_suffix_is_optional(tmp_path):
    save(tmp_path, **arrays(labels="float"))
    task = load_task({"name": "npz", "path": "set"}, tmp_path)
    assert task.task == "regression" and task.num_outputs == 2
    assert task.y_train.shape == (20, 2) and task.y_train.dtype == torch.float32


def test_validate_arrays_summarises_what_it_checked():
    summary = validate_arrays(arrays(n_train=5, n_test=3, labels="float"))
    assert summary == {
        "task": "regression",
        "num_outputs": 2,
        "input_shape": (4, 2),
        "n_train": 5,
        "n_test": 3,
    }


def test_missing_key_is_named():
    data = arrays()
    del data["y_test"]
    with pytest.raises(DataError, match=r"missing key.*y_test"):
        validate_arrays(data)


def test_nan_is_refused():
    data = arrays()
    data["x_train"][3, 1, 0] = np.nan
    with pytest.raises(DataError, match=r"x_train contains NaN or infinite values"):
        validate_arrays(data)


def test_mismatched_lengths_are_refused():
    data = arrays()
    data["y_train"] = data["y_train"][:-1]
    with pytest.raises(DataError, match=r"x_train and y_train must have the same length"):
        validate_arrays(data)


def test_strings_and_mixed_label_types_are_refused():
    data = arrays()
    data["x_test"] = np.array([["a"]] * 10)
    with pytest.raises(DataError, match=r"x_test must be a numeric array"):
        validate_arrays(data)
    data = arrays()
    data["y_test"] = data["y_test"].astype(np.float64)
    with pytest.raises(DataError, match=r"labels must be integers .* or floats"):
        validate_arrays(data)


def test_pickled_object_arrays_are_refused(tmp_path):
    data = arrays()
    data["y_train"] = np.array([1, "two", None] * 7, dtype=object)[:20]
    name = save(tmp_path, **data)
    with pytest.raises(DataError, match=r"y_train holds Python objects"):
        load_task({"name": "npz", "path": name}, tmp_path)


@pytest.mark.parametrize("path", ["../x.npz", "sub/../../x.npz", "/etc/passwd", "..\\x.npz"])
def test_paths_leaving_the_data_folder_are_refused(tmp_path, path):
    inside = tmp_path / "data"
    inside.mkdir()
    save(tmp_path, name="x.npz", **arrays())
    with pytest.raises(DataError, match=r"must be a file name inside the data folder"):
        load_task({"name": "npz", "path": path}, inside)


def test_symlink_escaping_the_data_folder_is_refused(tmp_path):
    inside = tmp_path / "data"
    inside.mkdir()
    save(tmp_path, name="secret.npz", **arrays())
    (inside / "link.npz").symlink_to(tmp_path / "secret.npz")
    with pytest.raises(DataError, match=r"leads outside the data folder"):
        load_task({"name": "npz", "path": "link.npz"}, inside)


def test_missing_file_and_missing_folder_are_explained(tmp_path):
    with pytest.raises(DataError, match=r"'nope.npz' not found in the data folder"):
        load_task({"name": "npz", "path": "nope.npz"}, tmp_path)
    with pytest.raises(DataError, match=r"needs a data folder: set FLATLAB_DATA_DIR"):
        load_task({"name": "npz", "path": "set.npz"})


def test_a_file_that_is_not_an_npz_is_refused(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"'junk.npz' is not a readable .npz file"):
        load_task({"name": "npz", "path": "junk.npz"}, tmp_path)


def test_a_pickle_or_a_single_array_is_refused(tmp_path):
    (tmp_path / "pickled.npz").write_bytes(pickle.dumps({"x_train": [1]}))
    with pytest.raises(DataError, match=r"'pickled.npz' is not a readable .npz file"):
        load_task({"name": "npz", "path": "pickled.npz"}, tmp_path)
    with open(tmp_path / "single.npz", "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(DataError, match=r"is a single .npy array"):
        load_task({"name": "npz", "path": "single.npz"}, tmp_path)
