"""The validation split: the fraction asked, carved from the training set only, seeded."""

from __future__ import annotations

import pytest
import torch

from sam_core.data import DataError, load_task
from sam_core.spec import JobSpec


def rows(x: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(r.tolist()) for r in x.reshape(len(x), -1)}


def test_the_split_holds_out_the_fraction_of_training_examples_and_leaves_test_alone():
    whole = load_task({"name": "digits"})
    split = load_task({"name": "digits", "validation_fraction": 0.25})
    assert len(split.x_val) == round(0.25 * whole.n_train)
    assert split.n_train + len(split.x_val) == whole.n_train
    assert torch.equal(split.x_test, whole.x_test) and torch.equal(split.y_test, whole.y_test)
    # together the two parts are the training set, example for example (labels too)
    parts = [
        (split.x_train, split.y_train),
        (split.x_val, split.y_val),
        (whole.x_train, whole.y_train),
    ]
    held, kept, original = (
        sorted((tuple(x.tolist()), int(y)) for x, y in zip(xs, ys, strict=True)) for xs, ys in parts
    )
    assert sorted(held + kept) == original


def test_the_split_follows_the_data_sets_seed():
    a = load_task({"name": "digits", "validation_fraction": 0.2})
    b = load_task({"name": "digits", "validation_fraction": 0.2})
    c = load_task({"name": "digits", "validation_fraction": 0.2, "split_seed": 1})
    assert torch.equal(a.x_val, b.x_val)
    assert rows(a.x_val) != rows(c.x_val)


def test_synthetic_sets_split_too():
    task = load_task({"name": "teacher_student", "n_train": 40, "validation_fraction": 0.1})
    assert (task.n_train, len(task.x_val)) == (36, 4)


def test_a_split_leaving_nothing_to_train_on_is_refused():
    with pytest.raises(DataError, match="validation_fraction"):
        load_task({"name": "teacher_student", "n_train": 4, "validation_fraction": 0.9})


def test_no_split_keeps_the_spec_hash_of_specs_written_before_the_field():
    spec = {"model": {"name": "mlp"}, "data": {"name": "digits"}, "optimizer": {"name": "sgd"}}
    plain = JobSpec.model_validate(spec)
    zero = JobSpec.model_validate({**spec, "data": {"name": "digits", "validation_fraction": 0}})
    split = JobSpec.model_validate({**spec, "data": {"name": "digits", "validation_fraction": 0.2}})
    assert plain.hash() == zero.hash() != split.hash()
    assert "validation_fraction" not in plain.canonical()["data"]
