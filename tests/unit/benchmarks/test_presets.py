"""Every preset is a valid, CPU-sized benchmark, and overrides lay over it."""

from __future__ import annotations

import pytest

from flatlab.presets import PRESETS, UnknownPreset, apply_preset
from sam_core.spec.benchmark import BenchmarkBody, expand


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_expands_to_a_valid_grid_with_its_baseline(name):
    body = BenchmarkBody.model_validate(apply_preset({"preset": name}))
    points = expand(body)
    assert body.baseline in {p.label for p in points}
    assert len(points) <= 100
    assert all(p.spec.training.device == "cpu" for p in points)


def test_overrides_merge_into_the_base_and_replace_axes():
    body = apply_preset(
        {
            "preset": "oikonomou2025_lambda",
            "base": {"training": {"epochs": 2}},
            "axes": {"config": None, "optimizer.lam": [0.0, 1.0]},
            "seeds": [7],
            "baseline": "lam=0.0",
        }
    )
    points = expand(BenchmarkBody.model_validate(body))
    assert [p.label for p in points] == ["lam=0.0", "lam=1.0"]
    assert points[0].spec.training.epochs == 2
    assert points[0].spec.optimizer.name == "unified_sam"
    assert points[0].seed == 7


def test_a_block_of_another_kind_replaces_the_preset_block():
    body = apply_preset({"preset": "khanh2024_digits", "base": {"model": {"name": "linear"}}})
    assert body["base"]["model"] == {"name": "linear"}


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(UnknownPreset, match="behdin2023"):
        apply_preset({"preset": "nope"})


def test_config_axis_lays_each_configuration_over_the_base():
    body = BenchmarkBody.model_validate(
        {
            "base": {
                "model": {"name": "linear"},
                "data": {"name": "digits", "batch_size": 8},
                "optimizer": {"name": "sam", "rho": 0.1, "base": {"lr": 0.05}},
            },
            "axes": {
                "config": [
                    {"label": "small", "optimizer": {"base": {"lr": 0.01}}},
                    {
                        "label": "gd long",
                        "optimizer": {"name": "gd", "base": {"lr": 0.2}},
                        "training": {"epochs": 3},
                    },
                ],
                "data.batch_size": [8, 16],
            },
            "seeds": [0],
        }
    )
    points = {p.label: p.spec for p in expand(body)}
    assert set(points) == {
        "small·batch_size=8",
        "small·batch_size=16",
        "gd long·batch_size=8",
        "gd long·batch_size=16",
    }
    small = points["small·batch_size=16"]
    assert (small.optimizer.name, small.optimizer.rho, small.optimizer.base.lr) == (
        "sam",
        0.1,
        0.01,
    )
    assert small.data.batch_size == 16 and small.training.epochs == 10
    gd = points["gd long·batch_size=8"]
    assert (gd.optimizer.name, gd.optimizer.base.lr, gd.training.epochs) == ("gd", 0.2, 3)


def test_config_axis_needs_distinct_labels():
    from sam_core.spec.benchmark import BenchmarkInvalid

    base = {"model": {"name": "linear"}, "data": {"name": "digits"}, "optimizer": {"name": "sgd"}}
    for configs, message in (
        ([{"optimizer": {"base": {"lr": 0.1}}}], "needs a 'label'"),
        ([{"label": "a"}, {"label": "a", "training": {"epochs": 2}}], "same label"),
    ):
        body = BenchmarkBody.model_validate({"base": base, "axes": {"config": configs}})
        with pytest.raises(BenchmarkInvalid, match=message):
            expand(body)
