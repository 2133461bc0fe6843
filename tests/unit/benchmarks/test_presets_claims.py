"""Each preset can test its paper's claim: every point measures what the claim is read from.

No training here: the presets are expanded and their specs inspected.
"""

from __future__ import annotations

import math

import pytest

from flatlab.presets import PRESETS, apply_preset
from sam_core.spec.benchmark import BenchmarkBody, Point, expand
from sam_core.spec.catalog import MEASURES

TEACHER_TASKS = {"teacher_student", "kernel_regression", "relu_teacher", "xor"}
# Summary metrics every completed run reports (docs/training.md, "Summary").
ALWAYS = {"final_train_loss", "final_test_loss", "gen_gap_loss", "train_loss", "test_loss"}
CLASSIFICATION_ONLY = {"final_test_acc", "final_train_acc", "gen_gap_acc", "best_test_acc"}


def points_of(name: str) -> list[Point]:
    return expand(BenchmarkBody.model_validate(apply_preset({"preset": name})))


def measure_behind(metric: str) -> str | None:
    """The catalog measure a summary metric comes from: `hessian_trace`, or the
    measure whose scalar extra it is (`ascent_sharpness_grad_norm`)."""
    names = sorted((m for m in MEASURES if metric == m or metric.startswith(m + "_")), key=len)
    return names[-1] if names else None


def provides(point: Point, metric: str) -> bool:
    spec = point.spec
    if metric in ALWAYS:
        return True
    if metric in CLASSIFICATION_ONLY:
        return spec.data.name not in TEACHER_TASKS
    if metric == "prediction_error":
        return spec.data.name in TEACHER_TASKS
    measure = measure_behind(metric)
    return measure is not None and measure in {m.name for m in spec.measure.sharpness}


def steps(point: Point, n_train: int) -> int:
    spec = point.spec
    if spec.effective_sampling == "full":
        per_epoch = 1
    else:
        per_epoch = math.ceil(n_train / spec.data.batch_size)
    total = spec.training.epochs * per_epoch
    return min(total, spec.training.max_steps or total)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_point_measures_what_the_claim_needs(name):
    preset = PRESETS[name]
    assert preset.metrics, f"{name} names no metric its claim is read from"
    points = points_of(name)
    for point in points:
        for metric in (*preset.metrics, *preset.series):
            assert provides(point, metric), f"{point.label} does not report {metric}"
    # Replicates: training seeds, or (bias/variance over label noise) noise draws.
    replicates = {p.seed for p in points} | {
        p.spec.data.model_dump().get("noise_seed") for p in points
    }
    assert len(replicates - {None}) >= 3
    assert all(p.spec.training.device == "cpu" for p in points)


@pytest.mark.parametrize("name", list(PRESETS))
def test_points_of_a_preset_differ_only_along_its_axes(name):
    """Every configuration runs every seed, and the comparison has a baseline."""
    body = BenchmarkBody.model_validate(apply_preset({"preset": name}))
    points = expand(body)
    labels = {p.label for p in points}
    assert body.baseline in labels
    assert len(points) == len(labels) * len(body.seeds)


def test_every_preset_says_how_it_is_scaled_and_runs_three_seeds_or_thirty_noise_draws():
    for name, preset in PRESETS.items():
        assert len(preset.description) > 100, name
        points = points_of(name)
        noise_draws = {p.spec.data.model_dump().get("noise_seed") for p in points}
        assert len({p.seed for p in points}) >= 3 or len(noise_draws) >= 30, name


def test_wen_li_ma_runs_the_three_scenarios_on_xor_with_1sam_against_gd_with_decay():
    models = {}
    for scenario in ("nobias", "bias", "simln"):
        points = points_of(f"wen_li_ma2023_{scenario}")
        for point in points:
            data = point.spec.data
            assert (data.name, data.dim, data.n_train) == ("xor", 30, 100)
            assert point.spec.model.init == "pytorch"
        sam = [p for p in points if p.label == "1-SAM"]
        gd = [p for p in points if p.label == "GD+wd"]
        assert {p.spec.effective_sampling for p in sam} == {"uniform"}
        assert {p.spec.data.batch_size for p in sam} == {1}
        assert {p.spec.optimizer.base.weight_decay for p in sam} == {0.0}
        assert {(p.spec.effective_sampling, p.spec.optimizer.base.weight_decay) for p in gd} == {
            ("full", 0.05)
        }
        models[scenario] = {(p.spec.model.first_bias, p.spec.model.norm) for p in points}
    assert models == {
        "nobias": {(False, "none")},
        "bias": {(True, "none")},
        "simln": {(True, "sim_ln")},
    }


def test_importance_sampling_runs_at_its_own_larger_step_and_at_the_uniform_one():
    points = points_of("oikonomou2025_importance")
    lr = {
        (p.spec.data.sampling, p.label.split("step=")[1]): p.spec.optimizer.base.lr for p in points
    }
    assert lr[("importance", "uniform")] == lr[("uniform", "uniform")]
    ratio = lr[("importance", "importance")] / lr[("uniform", "uniform")]
    assert ratio > 5  # L_max / L_avg of the authors' spectrum


def test_khanh_runs_constant_and_the_three_diminishing_schedules():
    for name in ("khanh2024_quadratic", "khanh2024_digits"):
        schedules = {p.spec.optimizer.schedule.name for p in points_of(name)}
        assert {"constant", "diminish1", "diminish2", "diminish3"} <= schedules


def test_behdin_bias_variance_draws_thirty_noise_seeds_for_both_rules():
    points = points_of("behdin2023_bias_variance")
    for rule in ("gd", "sam"):
        seeds = {p.spec.data.noise_seed for p in points if p.spec.optimizer.name == rule}
        assert len(seeds) == 30
    assert len({p.spec.data.data_seed for p in points}) == 1
