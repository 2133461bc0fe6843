"""Turns training events into rows: metric points in batches, progress, checkpoints, extras.

Points are buffered and written with `write_metric_points` (idempotent on
`(job_id, name, step)`) at most every `flush_seconds`, so a live stream sees
them within about a second while the database sees few, large inserts.
Checkpoints are written to `<artifacts_dir>/<job_id>/checkpoint.pt` through a
temporary file and a rename, so a crash never leaves half a checkpoint behind.

Every write is fenced by this attempt's worker id (`store.leases.hold`): points,
progress, artifact rows, and the rename of a file into place, which happens
inside the transaction that holds the job's row, so a stale attempt can never
replace the files of the attempt that took over, or of a finished job. A write
refused by the fence raises `LeaseLost` and the attempt ends at once.

A file that cannot be written for the machine's reasons (disk full, a
read-only or vanished folder) raises `StorageFailure`, an infrastructure
failure, after removing the partial temporary file. The final checkpoint is
the exception: training is already done, so the run goes on to its summary
and `storage_error` says what failed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.orm import Session, sessionmaker

from sam_core.training.events import Checkpoint, Event, Finished, Metrics, Progress, Started
from store.artifacts import add_artifact
from store.leases import LeaseLost, hold, set_job_fields, update_progress
from store.metrics import write_metric_points
from worker.transactions import in_transaction

CHECKPOINT_NAME = "checkpoint.pt"


class StorageFailure(Exception):
    """A file of the run could not be written (ENOSPC, EROFS, a vanished folder, …)."""

    def __init__(self, path: Path, cause: OSError) -> None:
        reason = cause.strerror or type(cause).__name__
        super().__init__(f"could not write {path.name} of the job: {reason} (errno {cause.errno})")
        self.path, self.cause = path, cause


class Recorder:
    """The `on_event` of one run: what the trainer reports, written for one job."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        job_id: str,
        team_id: str,
        worker_id: str,
        artifacts_dir: Path,
        reproducibility: dict[str, Any],
        flush_seconds: float = 1.0,
        max_buffer: int = 2000,
    ) -> None:
        self.factory, self.job_id, self.team_id = factory, job_id, team_id
        self.worker_id = worker_id
        self.folder = artifacts_dir / job_id
        self.reproducibility = reproducibility
        self.flush_seconds, self.max_buffer = flush_seconds, max_buffer
        self.points: list[tuple[str, int, float, float]] = []
        self.last_flush = self.last_progress = time.monotonic()
        self.step = 0
        self.total_steps = 0
        self.device = "cpu"
        self.storage_error: StorageFailure | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Metrics):
            self._metrics(event)
        elif isinstance(event, Progress):
            self._progress(event)
        elif isinstance(event, Checkpoint):
            self._checkpoint(event)
        elif isinstance(event, Started):
            self._started(event)
        elif isinstance(event, Finished):
            self.step = event.step
            self.flush()

    def flush(self) -> None:
        """Write the buffered points (retried through database outages, never dropped)."""
        points, self.points = self.points, []
        self.last_flush = time.monotonic()
        if points:
            in_transaction(
                self.factory,
                lambda s: write_metric_points(
                    session=s, job_id=self.job_id, points=points, holder=self.worker_id
                ),
                what=f"writing {len(points)} metric points",
            )

    def _started(self, event: Started) -> None:
        self.device = event.device
        self.step = event.start_step
        block = {**self.reproducibility, "device": event.device, "num_params": event.num_params}
        self.total_steps = event.total_steps
        self._set(
            reproducibility=block,
            total_steps=event.total_steps,
            step=event.start_step,
            fraction=self._fraction(event.start_step),
        )

    def _metrics(self, event: Metrics) -> None:
        self.step = event.step
        self.points.extend((k, event.step, event.epoch, float(v)) for k, v in event.values.items())
        for name, value in event.extras.items():
            self._save_extra(name, event.step, value)
        if self._due():
            self.flush()

    def _progress(self, event: Progress) -> None:
        self.step = event.step
        now = time.monotonic()
        if now - self.last_progress < self.flush_seconds and event.fraction < 1.0:
            return
        self.last_progress = now
        self.flush()
        self._fenced(
            lambda s: update_progress(
                session=s,
                job_id=self.job_id,
                worker_id=self.worker_id,
                step=event.step,
                epoch=event.epoch,
                fraction=event.fraction,
            ),
            what="updating progress",
        )

    def _checkpoint(self, event: Checkpoint) -> None:
        self.flush()
        final = self.total_steps > 0 and event.step >= self.total_steps
        try:
            self._publish(
                CHECKPOINT_NAME,
                "checkpoint",
                event.step,
                lambda tmp: torch.save(event.state, tmp),
                checkpoint_path=True,
                epoch=event.epoch,
            )
        except StorageFailure as exc:
            if not final:
                raise
            self.storage_error = exc  # training is done: keep going to the summary

    def _save_extra(self, name: str, step: int, value: Any) -> None:
        filename = f"{name}_step{step}.json"
        text = json.dumps({"name": name, "step": step, "value": value}, default=_jsonable)
        self._publish(filename, "plot", step, lambda tmp: Path(tmp).write_text(text))

    def _publish(
        self,
        name: str,
        kind: str,
        step: int,
        save: Any,
        *,
        checkpoint_path: bool = False,
        epoch: float = 0.0,
    ) -> None:
        """Write a file to a temporary name, then, under the fence, rename it into place
        and record it (artifact row; for a checkpoint also the job's checkpoint columns)."""
        path = self.folder / name
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        try:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                save(tmp)
            except OSError as exc:
                raise StorageFailure(path, exc) from exc

            def swap(session: Session) -> None:
                hold(session=session, job_id=self.job_id, worker_id=self.worker_id)
                try:
                    if tmp.exists():  # not yet renamed by an earlier try of this transaction
                        os.replace(tmp, path)
                    size = path.stat().st_size
                except OSError as exc:
                    raise StorageFailure(path, exc) from exc
                if checkpoint_path:
                    fields: dict[str, Any] = {"checkpoint_path": self._relative(path), "step": step}
                    fields.update(epoch=epoch, fraction=self._fraction(step))
                    self._held(set_job_fields(session=session, **self._who(), **fields))
                add_artifact(
                    session=session,
                    job_id=self.job_id,
                    team_id=self.team_id,
                    name=name,
                    kind=kind,
                    path=self._relative(path),
                    size_bytes=size,
                    step=step,
                )

            in_transaction(self.factory, swap, what=f"recording {name}")
        finally:
            tmp.unlink(missing_ok=True)  # a partial or refused file never stays behind

    def _relative(self, path: Path) -> str:
        """Paths are stored relative to the artifacts folder, which each machine mounts."""
        return str(path.relative_to(self.folder.parent))

    def _set(self, **values: Any) -> None:
        self._fenced(
            lambda s: set_job_fields(session=s, **self._who(), **values), what="updating the job"
        )

    def _fenced(self, update: Any, *, what: str) -> None:
        """Run a conditional update of the job's row; `LeaseLost` when it matched nothing."""
        self._held(in_transaction(self.factory, update, what=what))

    def _held(self, matched: bool) -> None:
        if not matched:
            raise LeaseLost(self.job_id, self.worker_id)

    def _who(self) -> dict[str, str]:
        return {"job_id": self.job_id, "worker_id": self.worker_id}

    def _fraction(self, step: int) -> float:
        """step / total_steps, so the column never lags the step written beside it."""
        return step / self.total_steps if self.total_steps else 0.0

    def _due(self) -> bool:
        return (
            len(self.points) >= self.max_buffer
            or time.monotonic() - self.last_flush >= self.flush_seconds
        )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
