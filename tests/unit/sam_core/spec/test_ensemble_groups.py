"""Grouping a benchmark's jobs into seed ensembles, from their specs alone."""

from __future__ import annotations

import copy
import subprocess
import sys

from sam_core.spec import JobSpec
from sam_core.spec.ensemble import ENSEMBLE_RULES, can_ensemble, ensemble_groups

BASE = {
    "model": {"name": "two_layer_relu", "width": 16},
    "data": {"name": "relu_teacher", "n_train": 64},
    "optimizer": {"name": "sam", "rho": 0.05},
    "training": {"epochs": 1, "seed": 0},
}


def make(**changes: object) -> JobSpec:
    raw = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return JobSpec.model_validate(raw)


def test_jobs_differing_in_seed_and_rho_share_one_group():
    specs = [make(training__seed=s, optimizer__rho=r) for r in (0.05, 0.1) for s in (0, 1, 2)]
    assert ensemble_groups(specs, max_members=32) == [[0, 1, 2, 3, 4, 5]]
    assert can_ensemble(specs) == (True, "")


def test_a_different_width_or_rule_starts_another_group():
    specs = [make(), make(model__width=32), make(training__seed=1), make(optimizer__name="usam")]
    assert ensemble_groups(specs, max_members=32) == [[0, 2], [1], [3]]
    ok, reason = can_ensemble(specs[:2])
    assert not ok and "model.width" in reason


def test_unsupported_rules_and_batchnorm_models_run_alone():
    specs = [make(optimizer__name="esam", training__seed=s) for s in range(3)]
    specs.append(make(model={"name": "mlp", "hidden": [8], "batchnorm": True}))
    assert ensemble_groups(specs, max_members=32) == [[0], [1], [2], [3]]
    assert "esam" in can_ensemble(specs[:1])[1]


def test_groups_are_cut_at_max_members_and_off_below_two():
    specs = [make(training__seed=s) for s in range(5)]
    assert ensemble_groups(specs, max_members=2) == [[0, 1], [2, 3], [4]]
    assert ensemble_groups(specs, max_members=1) == [[0], [1], [2], [3], [4]]


def test_the_stacked_trainer_supports_exactly_the_rules_the_grouping_allows():
    from sam_core.training.stacked import RULES

    assert set(RULES) == set(ENSEMBLE_RULES)


def test_grouping_imports_no_torch():
    code = "import sys, sam_core.spec.ensemble; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
