"""`flatlab worker --gpus`: one worker over several GPUs, for data-parallel jobs."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from flatlab.cli import app


def test_gpus_pins_the_worker_to_those_gpus_on_the_gpu_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("os.execve", lambda path, argv, env: seen.update(argv=argv, env=env))
    result = CliRunner().invoke(app, ["worker", "--gpus", "0,1,2,3"])
    assert result.exit_code == 0, result.output
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"
    argv = seen["argv"]
    assert argv[argv.index("--queues") + 1] == "gpu"
    assert argv[argv.index("--hostname") + 1].startswith("gpus0-1-2-3-")


@pytest.mark.parametrize(
    "args", [["--gpus", "0,0"], ["--gpus", "a,1"], ["--gpu", "0", "--gpus", "1,2"]]
)
def test_bad_gpu_lists_are_refused_naming_the_option(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["worker", *args])
    assert result.exit_code == 2
    assert "--gpus" in result.output
