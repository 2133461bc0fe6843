"""An axis over a field only some blocks have: applied where it exists, skipped (and said) else."""

from __future__ import annotations

import pytest

from sam_core.spec.benchmark import BenchmarkBody, BenchmarkInvalid, expand

BASE = {
    "model": {"name": "mlp", "hidden": [16]},
    "data": {"name": "digits"},
    "optimizer": {"name": "sgd"},
    "training": {"epochs": 1},
}
RULES = [{"name": "sgd"}, {"name": "sam"}, {"name": "asam"}]


def test_rho_axis_beside_rules_skips_sgd_which_runs_once() -> None:
    body = BenchmarkBody(
        base=BASE, axes={"optimizer": RULES, "optimizer.rho": [0.05, 0.1]}, seeds=[0, 1]
    )
    points = expand(body)
    configs = {
        (p.label, p.spec.optimizer.name, getattr(p.spec.optimizer, "rho", None)) for p in points
    }
    assert configs == {
        ("sgd", "sgd", None),
        ("sam·rho=0.05", "sam", 0.05),
        ("sam·rho=0.1", "sam", 0.1),
        ("asam·rho=0.05", "asam", 0.05),
        ("asam·rho=0.1", "asam", 0.1),
    }
    assert len(points) == 5 * 2  # every configuration once per seed, SGD not twice
    assert {p.label: p.skipped for p in points}["sgd"] == ("optimizer.rho",)
    assert all(p.skipped == () for p in points if p.label != "sgd")
    assert sorted(p.seed for p in points if p.label == "sgd") == [0, 1]


def test_rho_on_a_base_rule_without_it_says_how_to_write_the_grid() -> None:
    body = BenchmarkBody(base=BASE, axes={"optimizer.rho": [0.05, 0.1]}, seeds=[0])
    with pytest.raises(BenchmarkInvalid) as info:
        expand(body)
    (error, *_) = info.value.errors
    assert error["loc"] == "optimizer.rho"
    assert "optimizer 'sgd' has no field 'rho'" in error["msg"]
    assert "axis 'optimizer'" in error["msg"]


def test_an_axis_no_configuration_has_is_refused() -> None:
    body = BenchmarkBody(base=BASE, axes={"optimizer": RULES, "optimizer.rhoo": [0.1]}, seeds=[0])
    with pytest.raises(BenchmarkInvalid, match=r"'optimizer\.rhoo' applies to no configuration"):
        expand(body)


def test_a_typo_names_the_closest_field() -> None:
    base = {**BASE, "optimizer": {"name": "sam"}}
    body = BenchmarkBody(base=base, axes={"optimizer.rhoo": [0.1]}, seeds=[0])
    with pytest.raises(BenchmarkInvalid, match=r"did you mean 'rho'"):
        expand(body)
