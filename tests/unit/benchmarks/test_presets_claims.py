"""Each preset can test its paper's claim: every point measures what the claim is read from.

No training here: the presets are expanded and their specs inspected.
"""

from __future__ import annotations

import math

import pytest

from flatlab.presets import PRESETS, apply_preset
from sam_core.spec.benchmark import BenchmarkBody, Point, expand
from sam_core.spec.catalog import MEASURES

TEACHER_TASKS = {"teacher_student", "kernel_regression", "relu_teacher"}
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
    assert len({p.seed for p in points}) >= 2
    assert all(p.spec.training.device == "cpu" for p in points)


@pytest.mark.parametrize("name", list(PRESETS))
def test_points_of_a_preset_differ_only_along_its_axes(name):
    """Every configuration runs every seed, and the comparison has a baseline."""
    body = BenchmarkBody.model_validate(apply_preset({"preset": name}))
    points = expand(body)
    labels = {p.label for p in points}
    assert body.baseline in labels
    assert len(points) == len(labels) * len(body.seeds)


def test_behdin_compares_gd_and_sam_at_one_step_size_over_noise_levels():
    points = points_of("behdin2023")
    rules = {p.spec.optimizer.name for p in points}
    assert rules == {"gd", "sam"}
    assert {p.spec.effective_sampling for p in points} == {"full"}
    assert len({p.spec.optimizer.base.lr for p in points}) == 1
    assert len({p.spec.data.noise for p in points}) >= 3
    assert {p.spec.model.name for p in points} == {"random_features", "one_hidden"}


def test_oikonomou_sweeps_lambda_and_sampling_of_unified_sam():
    points = points_of("oikonomou2025")
    assert {p.spec.optimizer.name for p in points} == {"unified_sam"}
    assert {p.spec.optimizer.lam for p in points} == {0.0, 0.5, 1.0}
    assert {p.spec.data.sampling for p in points} == {"uniform", "importance"}


def test_wen_li_ma_trains_sgd_and_sam_on_two_layer_relu_with_the_trace():
    points = points_of("wen_li_ma2023")
    assert {p.spec.model.name for p in points} == {"two_layer_relu"}
    assert {p.spec.optimizer.name for p in points} == {"sgd", "sam"}
    assert all(p.spec.data.name == "relu_teacher" for p in points)


def test_wen_ma_li_compares_full_batch_and_batch_size_one_sam_near_a_minimum():
    points = points_of("wen_ma_li2023")
    by_regime = {(p.spec.optimizer.name, p.spec.effective_sampling) for p in points}
    assert by_regime == {("sgd", "full"), ("sam", "full"), ("sgd", "uniform"), ("sam", "uniform")}
    for point in points:
        data = point.spec.data
        assert data.batch_size == 1 and data.noise == 0.0  # 1-SAM; an interpolating teacher
        assert point.spec.measure.num_examples >= data.n_train  # the whole training loss
        # over-parameterized: more weights than examples, so minimizers form a manifold
        width, dim = point.spec.model.width, data.dim
        assert width * (dim + 2) > data.n_train
    # Same number of steps in both regimes, so neither is merely further along.
    assert len({steps(p, p.spec.data.n_train) for p in points}) == 1


def test_khanh_runs_four_rules_deterministically_with_both_step_size_rules():
    points = points_of("khanh2024")
    assert {p.spec.optimizer.name for p in points} == {"sam", "usam", "vasso", "rsam"}
    assert {p.spec.optimizer.schedule.name for p in points} == {"constant", "diminishing"}
    assert {p.spec.effective_sampling for p in points} == {"full"}
    for point in points:
        # the gradient norm is of the whole training objective, at every evaluation
        assert point.spec.measure.num_examples >= point.spec.data.n_train
        assert point.spec.measure.every_epochs < point.spec.training.epochs
