"""Grid expansion: one validated job spec per point, labels per configuration."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sam_core.spec.benchmark import BenchmarkBody, BenchmarkInvalid, expand

BASE = {
    "model": {"name": "mlp", "hidden": [16]},
    "data": {"name": "digits", "batch_size": 64},
    "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.1}},
    "training": {"epochs": 1},
}

# Grid values as people write them: short decimals.
decimals = st.integers(0, 1000).map(lambda i: i / 1000)
AXIS_VALUES = {
    "optimizer.rho": decimals,
    "optimizer.base.lr": decimals.filter(lambda v: v > 0),
    "data.batch_size": st.integers(1, 512),
    "data.label_noise": decimals,
    "training.epochs": st.integers(1, 5),
}

grids = st.fixed_dictionaries(
    {},
    optional={
        path: st.lists(values, min_size=1, max_size=3, unique=True)
        for path, values in AXIS_VALUES.items()
    },
)


def flatten(node, prefix=""):
    if not isinstance(node, dict):
        return {prefix: node}
    out = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


@settings(max_examples=40, deadline=None)
@given(axes=grids, seeds=st.lists(st.integers(0, 100), min_size=1, max_size=3, unique=True))
def test_grid_has_one_job_per_point_and_points_differ_only_on_axes(axes, seeds):
    points = expand(BenchmarkBody(base=BASE, axes=axes, seeds=seeds))

    assert len(points) == math.prod(len(v) for v in axes.values()) * len(seeds)
    first = flatten(points[0].spec.model_dump(mode="json"))
    allowed = {*axes, "training.seed"}
    for point in points:
        here = flatten(point.spec.model_dump(mode="json"))
        assert {k for k in here if here[k] != first.get(k)} <= allowed
        assert point.spec.training.seed == point.seed
        for path, value in point.values.items():
            assert here[path] == value


@settings(max_examples=40, deadline=None)
@given(axes=grids)
def test_labels_are_unique_per_configuration(axes):
    points = expand(BenchmarkBody(base=BASE, axes=axes, seeds=[0, 1]))

    by_label: dict[str, set[str]] = {}
    for point in points:
        config = repr(sorted(point.values.items()))
        by_label.setdefault(point.label, set()).add(config)
    assert all(len(configs) == 1 for configs in by_label.values())
    assert len(by_label) == len(points) // 2


def test_optimizer_axis_takes_whole_blocks_with_their_labels():
    body = BenchmarkBody(
        base=BASE,
        axes={
            "optimizer": [{"name": "sgd", "label": "SGD"}, {"name": "sam", "rho": 0.1}],
            "data.batch_size": [32, 64],
        },
        seeds=[0, 1, 2],
    )
    points = expand(body)

    assert len(points) == 12
    assert sorted({p.label for p in points}) == [
        "SGD·batch_size=32",
        "SGD·batch_size=64",
        "sam·batch_size=32",
        "sam·batch_size=64",
    ]
    sam = next(p for p in points if p.label.startswith("sam"))
    assert sam.spec.optimizer.rho == 0.1


def test_blocks_of_the_same_rule_are_told_apart_by_what_differs():
    body = BenchmarkBody(
        base=BASE,
        axes={"optimizer": [{"name": "sam", "rho": 0.05}, {"name": "sam", "rho": 0.1}]},
        seeds=[0],
    )
    assert [p.label for p in expand(body)] == ["sam(rho=0.05)", "sam(rho=0.1)"]


def test_sub_path_axis_applies_inside_the_chosen_block():
    body = BenchmarkBody(
        base=BASE,
        axes={"optimizer.rho": [0.01, 0.2], "optimizer": [{"name": "asam"}, {"name": "sam"}]},
        seeds=[0],
    )
    points = expand(body)
    assert [(p.spec.optimizer.name, p.spec.optimizer.rho) for p in points] == [
        ("asam", 0.01),
        ("asam", 0.2),
        ("sam", 0.01),
        ("sam", 0.2),
    ]


def test_bad_value_is_reported_with_the_point_and_field_path():
    body = BenchmarkBody(base=BASE, axes={"optimizer.base.lr": [0.1, -1.0]}, seeds=[0])
    with pytest.raises(BenchmarkInvalid) as info:
        expand(body)
    (error,) = info.value.errors
    assert error["loc"] == "optimizer.base.lr"
    assert error["point"] == {"label": "lr=-1.0", "optimizer.base.lr": -1.0}
    assert "greater than 0" in error["msg"]


def test_unknown_axis_path_is_named():
    body = BenchmarkBody(base=BASE, axes={"optimizer.rhoo": [0.1]}, seeds=[0])
    with pytest.raises(BenchmarkInvalid, match=r"unknown axis path 'optimizer.rhoo'"):
        expand(body)


def test_axis_outside_the_spec_is_refused_when_the_body_is_read():
    with pytest.raises(ValueError, match=r"unknown axis path 'optimiser.rho'"):
        BenchmarkBody(base=BASE, axes={"optimiser.rho": [0.1]})


def test_axis_into_a_value_is_refused():
    body = BenchmarkBody(base=BASE, axes={"optimizer.rho.x": [0.1]}, seeds=[0])
    with pytest.raises(BenchmarkInvalid, match=r"'optimizer.rho' is a value"):
        expand(body)


def test_seed_is_not_an_axis():
    with pytest.raises(ValueError, match=r"list the seeds in 'seeds'"):
        BenchmarkBody(base=BASE, axes={"training.seed": [1, 2]})


def test_size_limit_gives_the_count():
    body = BenchmarkBody(
        base=BASE, axes={"optimizer.rho": [0.01 * i for i in range(1, 41)]}, seeds=list(range(30))
    )
    with pytest.raises(BenchmarkInvalid, match=r"benchmark has 1200 jobs .* limit of 1000"):
        expand(body, max_jobs=1000)


def test_baseline_must_be_a_label():
    body = BenchmarkBody(base=BASE, axes={"optimizer.rho": [0.0, 0.1]}, baseline="sgd")
    with pytest.raises(BenchmarkInvalid, match=r"baseline 'sgd' is not one of .*rho=0.0, rho=0.1"):
        expand(body)


def test_repeated_axis_value_is_refused():
    with pytest.raises(ValueError, match=r"repeats a value"):
        BenchmarkBody(base=BASE, axes={"optimizer.rho": [0.1, 0.1]})


def test_benchmark_tags_are_added_to_every_job():
    body = BenchmarkBody(base={**BASE, "tags": ["a"]}, tags=["a", "b"], axes={}, seeds=[3])
    (point,) = expand(body)
    assert point.spec.tags == ["a", "b"]
    assert point.label == "base"
    assert point.spec.training.seed == 3
