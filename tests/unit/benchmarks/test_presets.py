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
            "preset": "oikonomou2025",
            "base": {"training": {"epochs": 2}},
            "axes": {"data.sampling": None, "optimizer.lam": [0.0, 1.0]},
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
    body = apply_preset({"preset": "khanh2024", "base": {"model": {"name": "linear"}}})
    assert body["base"]["model"] == {"name": "linear"}


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(UnknownPreset, match="behdin2023"):
        apply_preset({"preset": "nope"})
