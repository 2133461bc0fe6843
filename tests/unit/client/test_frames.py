"""The API's JSON as DataFrames: every number lands in its row and column, nulls as NaN."""

from __future__ import annotations

import math

from flatlab.client import frames

T = "2026-01-01T00:00:0{}Z"
METRICS = {
    "train_loss": [
        {"step": 1, "epoch": 0.5, "value": 2.0, "time": T.format(1)},
        {"step": 2, "epoch": 1.0, "value": None, "time": T.format(2)},
    ],
    "test_acc": [{"step": 2, "epoch": 1.0, "value": 0.75, "time": T.format(3)}],
}


def test_metrics_long_has_one_row_per_point_in_the_server_order():
    long = frames.metrics_long(METRICS)
    assert list(long["name"]) == ["train_loss", "train_loss", "test_acc"]
    assert list(long["step"]) == [1, 2, 2]
    assert long["value"].iloc[0] == 2.0 and math.isnan(long["value"].iloc[1])
    assert str(long["time"].dt.tz) == "UTC" and long["time"].iloc[2].second == 3


def test_metrics_wide_has_a_row_per_step_and_a_column_per_metric():
    wide = frames.metrics_wide(frames.metrics_long(METRICS))
    assert list(wide.index) == [1, 2]
    assert list(wide.columns) == ["epoch", "train_loss", "test_acc"]
    assert wide.loc[1, "train_loss"] == 2.0 and math.isnan(wide.loc[1, "test_acc"])
    assert wide.loc[2, "test_acc"] == 0.75 and wide.loc[2, "epoch"] == 1.0


COMPARISON = {
    "baseline": "SGD",
    "configurations": {
        "SGD": {
            "runs": 2,
            "succeeded": 2,
            "metrics": {
                "final_test_acc": {"n": 2, "mean": 0.9, "std": 0.01, "ci_low": 0.8, "ci_high": 1.0}
            },
        },
        "SAM": {
            "runs": 2,
            "succeeded": 1,
            "metrics": {
                "final_test_acc": {
                    "n": 1,
                    "mean": 0.95,
                    "std": None,
                    "ci_low": None,
                    "ci_high": None,
                }
            },
        },
    },
    "paired_tests": {
        "SAM": {"final_test_acc": {"n_pairs": 1, "mean_diff": 0.04, "t": None, "p_value": None}}
    },
}


def test_comparison_long_and_wide_keep_the_grid_order_and_every_statistic():
    long = frames.comparison_long(COMPARISON)
    assert list(long["configuration"]) == ["SGD", "SAM"]
    sgd = long.iloc[0]
    assert (sgd["n"], sgd["mean"], sgd["std"], sgd["ci_low"], sgd["ci_high"]) == (
        2,
        0.9,
        0.01,
        0.8,
        1.0,
    )
    assert long.iloc[1]["succeeded"] == 1 and math.isnan(long.iloc[1]["std"])
    wide = frames.comparison_wide(long)
    assert list(wide.index) == ["SGD", "SAM"] and wide.loc["SAM", "final_test_acc"] == 0.95


def test_paired_tests_frame_has_nan_for_tests_that_need_more_pairs():
    paired = frames.paired_tests(COMPARISON)
    row = paired.iloc[0]
    assert (row["configuration"], row["metric"], row["n_pairs"]) == ("SAM", "final_test_acc", 1)
    assert row["mean_diff"] == 0.04 and math.isnan(row["p_value"])


def test_grouped_results_are_flat_columns_like_the_csv_export():
    groups = [
        {
            "key": {"optimizer.name": "sam"},
            "jobs": 3,
            "metrics": {"final_test_acc": {"n": 3, "mean": 0.9, "std": 0.1}},
        }
    ]
    frame = frames.result_groups(groups, ["optimizer.name"])
    assert frame.iloc[0].to_dict() == {
        "optimizer.name": "sam",
        "jobs": 3,
        "final_test_acc_n": 3,
        "final_test_acc_mean": 0.9,
        "final_test_acc_std": 0.1,
    }
    assert list(frames.result_groups([], ["optimizer.name"]).columns) == ["optimizer.name", "jobs"]
