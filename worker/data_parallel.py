"""A claimed job with `resources.devices > 1`: its ranks, launched from the worker.

The worker's process stays the job's parent: it keeps the lease (heartbeat), hears
cancel requests and the timeout (`StopSignal`), and starts the ranks through
`sam_core.training.distributed.launch` (torchrun's agent). Rank 0 writes the rows
and checkpoints through its own `Recorder` (its own database connection); a stop
reaches it as a file the parent creates, and the ranks agree on it every step.
If any rank fails, the agent stops the others and the launch raises.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from flatlab.settings import Settings
from sam_core.spec import JobSpec
from sam_core.training.distributed import DistributedTrainer, init_from_env, launch
from sam_core.training.events import Finished
from store.db import make_engine, make_session_factory
from worker.heartbeat import StopSignal
from worker.recorder import Recorder


def check_devices(spec: JobSpec) -> None:
    """Raise ValueError if this machine cannot hold the job's ranks."""
    wants = spec.resources.devices
    if spec.training.device == "cuda" or (
        spec.training.device == "auto" and torch.cuda.is_available()
    ):
        have = torch.cuda.device_count()
        if have < wants:
            raise ValueError(
                f"resources.devices {wants}: this worker sees {have} GPU(s); start it with "
                f"`flatlab worker --gpus` listing {wants}, or set training.device cpu (gloo)"
            )


def train_ranks(
    spec: JobSpec,
    recorder_args: dict[str, Any],
    settings: Settings,
    stop: StopSignal,
    resume_path: str | None,
) -> Finished:
    """Run the job on `spec.resources.devices` local ranks; rank 0's `Finished`."""
    check_devices(spec)
    with tempfile.TemporaryDirectory(prefix="flatlab-ranks-") as scratch:
        stop_file = Path(scratch) / "stop"
        done = threading.Event()
        watcher = threading.Thread(
            target=_relay_stop, args=(stop, stop_file, done), daemon=True, name="stop-relay"
        )
        watcher.start()
        try:
            results = launch(
                rank_main,
                (
                    spec.model_dump(mode="json"),
                    recorder_args,
                    settings,
                    str(stop_file),
                    resume_path,
                ),
                spec.resources.devices,
            )
        finally:
            done.set()
            watcher.join()
    finished = results[0]
    assert isinstance(finished, Finished)
    return finished


def _relay_stop(stop: StopSignal, stop_file: Path, done: threading.Event) -> None:
    """Create `stop_file` once the stop signal is set (cancel, timeout, SIGTERM)."""
    while not done.wait(0.2):
        if stop():
            stop_file.touch()
            return


def rank_main(
    spec_json: dict[str, Any],
    recorder_args: dict[str, Any],
    settings: Settings,
    stop_file: str,
    resume_path: str | None,
) -> Finished:
    """One rank: join the group, train its shard; rank 0 records."""
    spec = JobSpec.model_validate(spec_json)
    init_from_env(spec.distributed.timeout_s, device=spec.training.device)
    import torch.distributed as dist

    recorder = None
    if dist.get_rank() == 0:
        factory = make_session_factory(make_engine(settings.db_url))
        recorder = Recorder(factory, **recorder_args)
    trainer = DistributedTrainer(
        spec,
        recorder if recorder is not None else _ignore,
        Path(stop_file).exists,
        data_dir=str(settings.datasets_dir),
    )
    if resume_path is not None:
        trainer.load_state(torch.load(resume_path, map_location="cpu", weights_only=True))
    finished = trainer.run()
    if recorder is not None:
        recorder.flush()
    dist.destroy_process_group()
    return finished


def _ignore(event: Any) -> None:
    """Ranks other than 0 emit nothing; the trainer never calls this."""
