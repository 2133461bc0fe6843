"""Whole jobs on 2 gloo ranks: a stop reaches every rank, a resume is exact, a lost rank
leaves no process behind."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

from sam_core.spec import JobSpec
from sam_core.training.distributed import free_port, launch
from tests.unit.sam_core.distributed import ranks

# Ranks are processes (spawned, each importing torch): seconds each, minutes on a busy CPU.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _spec(**distributed: Any) -> dict[str, Any]:
    """RSAM (random noise each step) on a BatchNorm MLP: 2 ranks, 6 steps an epoch."""
    return JobSpec.model_validate(
        {
            "model": {"name": "mlp", "hidden": [16], "batchnorm": True},
            "data": {"name": "xor", "n_train": 96, "n_test": 64, "dim": 6, "batch_size": 16},
            "optimizer": {"name": "rsam", "rho": 0.05, "sigma": 0.01, "base": {"lr": 0.05}},
            "training": {"epochs": 2, "seed": 3, "device": "cpu", "log_every_steps": 2},
            "evaluate": {"every_epochs": 1},
            "resources": {"devices": 2},
            "distributed": {"timeout_s": 60, **distributed},
        }
    ).model_dump(mode="json")


@pytest.mark.parametrize("semantics", ["global", "local"])
def test_a_resume_across_ranks_is_exact(semantics: str, tmp_path: Path) -> None:
    spec = _spec(sam=semantics)
    whole = launch(ranks.run_job, (spec, None, None), 2)
    stopped = launch(ranks.run_job, (spec, 5, None), 2)  # stop asked after step 5 (mid-epoch)
    assert [stopped[r]["status"] for r in (0, 1)] == ["stopped", "stopped"]
    assert [stopped[r]["step"] for r in (0, 1)] == [5, 5]
    saved = stopped[0]["checkpoint"]
    assert len(saved["ranks"]) == 2 and stopped[1]["checkpoint"] is None  # rank 0 records
    torch.save(saved, tmp_path / "step5.pt")
    resumed = launch(ranks.run_job, (spec, None, str(tmp_path / "step5.pt")), 2)
    for rank in (0, 1):
        assert resumed[rank]["status"] == "completed"
        for a, b in zip(resumed[rank]["weights"], whole[rank]["weights"], strict=True):
            assert torch.equal(a, b)
    assert whole[1]["events"] == 0  # ranks other than 0 emit nothing


def test_a_resume_on_another_number_of_ranks_is_refused(tmp_path: Path) -> None:
    spec = _spec()
    saved = launch(ranks.run_job, (spec, 1, None), 2)[0]["checkpoint"]
    saved["ranks"] = saved["ranks"][:1]
    torch.save(saved, tmp_path / "one-rank.pt")
    with pytest.raises(ChildFailedError):
        launch(ranks.run_job, (spec, None, str(tmp_path / "one-rank.pt")), 2)


@pytest.mark.parametrize("how", ["kill", "stall"])
def test_a_lost_rank_fails_the_others_within_the_collective_timeout(how: str) -> None:
    """Without any launcher watching: the collective timeout alone ends rank 0."""
    timeout_s = 5.0
    context = mp.start_processes(
        ranks.lost_rank,
        args=(2, free_port(), how, timeout_s),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    survivor = context.processes[0]
    survivor.join(timeout=120)
    assert not survivor.is_alive(), "rank 0 still waits on a lost peer"
    assert survivor.exitcode != 0
    for process in context.processes:  # the stalled rank is ours to end
        if process.is_alive():
            process.kill()
        process.join(timeout=30)
        assert not process.is_alive()


def test_a_rank_killed_under_the_launcher_stops_the_job() -> None:
    """Under `launch` (torchrun's agent) a failed rank stops the others and raises."""
    started = time.monotonic()
    with pytest.raises(ChildFailedError):
        launch(ranks.lost_rank_launched, ("kill", 600.0), 2)
    assert mp.active_children() == []
    assert time.monotonic() - started < 300
