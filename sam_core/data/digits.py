"""scikit-learn's bundled digits: 1,797 8×8 images of 10 digits, no download needed."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sam_core.data.task import TaskData


def digits(params, data_dir=None) -> TaskData:
    """Pixels scaled from 0…16 to [0, 1], flat (64 features; image models read them as
    1×8×8); a stratified split of `test_fraction` drawn with `split_seed`."""
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0,
        y,
        test_size=params.test_fraction,
        stratify=y,
        random_state=params.split_seed,
    )
    return TaskData(
        name="digits",
        description=f"scikit-learn digits, {len(y_train)} train / {len(y_test)} test",
        x_train=torch.as_tensor(x_train, dtype=torch.float32),
        y_train=torch.as_tensor(y_train, dtype=torch.int64),
        x_test=torch.as_tensor(x_test, dtype=torch.float32),
        y_test=torch.as_tensor(y_test, dtype=torch.int64),
        task="classification",
        num_outputs=10,
        input_shape=(64,),
    )
