"""The spec's `resources` and `distributed` sections."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sam_core.spec import JobSpec
from sam_core.spec.ensemble import unsupported

BASE: dict[str, Any] = {
    "model": {"name": "mlp", "hidden": [8]},
    "data": {"name": "digits", "batch_size": 64},
    "optimizer": {"name": "sam", "rho": 0.05},
}


def test_a_batch_that_does_not_split_over_the_ranks_is_refused_naming_the_field() -> None:
    with pytest.raises(
        ValidationError, match=r"data\.batch_size 64 does not split evenly .* 3 ranks"
    ):
        JobSpec.model_validate({**BASE, "resources": {"devices": 3}})
    assert JobSpec.model_validate({**BASE, "resources": {"devices": 4}}).resources.world_size == 4


def test_defaults_leave_the_hash_of_a_single_device_spec_unchanged() -> None:
    plain = JobSpec.model_validate(BASE)
    spelled = JobSpec.model_validate(
        {**BASE, "resources": {"devices": 1, "nodes": 1}, "distributed": {"sam": "global"}}
    )
    assert "resources" not in plain.canonical() and "distributed" not in plain.canonical()
    assert plain.hash() == spelled.hash()
    local = JobSpec.model_validate(
        {**BASE, "resources": {"devices": 2}, "distributed": {"sam": "local"}}
    )
    assert local.hash() != plain.hash() and local.canonical()["distributed"]["sam"] == "local"


@pytest.mark.parametrize(
    "section",
    [
        {"distributed": {"sam": "both"}},
        {"distributed": {"batchnorm": "global"}},
        {"distributed": {"timeout_s": 1}},
        {"resources": {"devices": 0}},
        {"resources": {"nodes": 2}},
    ],
)
def test_unknown_values_are_refused(section: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        JobSpec.model_validate({**BASE, **section})


def test_data_parallel_jobs_are_not_ensembled() -> None:
    spec = JobSpec.model_validate({**BASE, "resources": {"devices": 2}})
    assert "data-parallel" in unsupported(spec)
