"""Why a run should stop, and the heartbeat thread that renews the lease and hears cancels.

`StopSignal` is the `should_stop` the trainer polls every step. Four things set
it, and the first one wins: a cancel request read by the heartbeat, the loss
of the lease (another worker holds the job now), the spec's wall-clock limit,
and SIGTERM (`shutdown`: checkpoint and give the job back). Whether that is a
graceful hand-back, spending no attempt, is decided once the run has stopped
(`graceful`): yes when the worker is stopping (a deploy); no when Celery
cancelled the run of a pool child whose parent is not stopping, because it
lost its broker connection: that is an infrastructure failure, counted.
"""

from __future__ import annotations

import ctypes
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.sharedctypes import RawValue
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from store.leases import renew_lease
from worker.transactions import in_transaction

StopReason = Literal["cancel", "lost", "timeout", "shutdown"]

log = logging.getLogger(__name__)


def job_timeout(spec_timeout_s: int | None, default_s: int | None) -> float | None:
    """A job's wall-clock limit: its `limits.timeout_s`, else the deployment's
    `FLATLAB_JOB_TIMEOUT_SECONDS`; None (no limit) when neither is set."""
    return float(spec_timeout_s) if spec_timeout_s is not None else default_s


class StopSignal:
    """`should_stop` for the trainer; `reason` says why once it is true.

    `timeout_s` is the wall-clock limit from now (None: no limit).
    """

    def __init__(self, timeout_s: float | None) -> None:
        self.deadline = math.inf if timeout_s is None else time.monotonic() + timeout_s
        self.reason: StopReason | None = None
        self._lock = threading.Lock()

    def set(self, reason: StopReason) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason

    def __call__(self) -> bool:
        if self.reason is None and time.monotonic() > self.deadline:
            self.set("timeout")
        return self.reason is not None


class Heartbeat(threading.Thread):
    """Renews the lease every `interval` seconds; sets the stop signal on cancel or lost lease."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        job_id: str,
        worker_id: str,
        interval: float,
        lease_seconds: float,
        stop: StopSignal,
    ) -> None:
        super().__init__(name=f"heartbeat-{job_id[:8]}", daemon=True)
        self.factory, self.job_id, self.worker_id = factory, job_id, worker_id
        self.interval, self.lease_seconds, self.stop = interval, lease_seconds, stop
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                state = in_transaction(self.factory, self._beat, what="heartbeat", give_up_after=0)
            except Exception as exc:  # a missed beat is retried at the next one
                log.warning("heartbeat for job %s failed: %s", self.job_id, exc)
                continue
            if not state.held:
                log.warning("job %s: lease lost; another worker holds it now", self.job_id)
                self.stop.set("lost")
                return
            if state.cancel_requested:
                self.stop.set("cancel")

    def _beat(self, session: Session) -> Any:
        return renew_lease(
            session=session,
            job_id=self.job_id,
            worker_id=self.worker_id,
            lease_seconds=self.lease_seconds,
        )

    def close(self) -> None:
        self._done.set()
        self.join(timeout=self.interval + 5)


# Shared memory made at import, before the pool forks: the parent sets it when its
# shutdown begins, and each child reads it when SIGTERM comes.
_parent_stopping = RawValue(ctypes.c_bool, False)


def mark_stopping() -> None:
    """In the worker's parent, as its shutdown begins: a SIGTERM now is a graceful hand-back."""
    _parent_stopping.value = True


def parent_stopping() -> bool:
    """Whether the worker's parent has begun its shutdown (a child forked after it inherits
    the mark: such a child will run no job)."""
    return bool(_parent_stopping.value)


def graceful(wait: float = 2.0) -> bool:
    """Whether a SIGTERM this process got is a hand-back: always, outside a pool child (a
    deploy stops the process); in a child, only when its parent is stopping, not when
    Celery cancels the run because the broker connection was lost.

    A signal sent to the whole process group may reach the child before its parent
    marks the shutdown, so a child waits up to `wait` seconds for the mark.
    """
    if not _in_pool_child():
        return True
    deadline = time.monotonic() + wait
    while not _parent_stopping.value and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(_parent_stopping.value)


# Set once this process got SIGTERM (a pool child: from `remember_sigterm`'s handler).
_terminated = threading.Event()


def terminated() -> bool:
    """Whether this process was asked to stop (SIGTERM) since it started."""
    return _terminated.is_set()


def remember_sigterm() -> None:
    """In a pool child, at start: SIGTERM is remembered, not fatal.

    The child then finishes what it is doing and starts no job (the task asks
    `terminated()`), and a job whose run begins afterwards stops at its first
    step and goes back to the queue. So `flatlab down` while a child is still
    importing torch for a job ends cleanly, instead of killing the child
    (which Celery logs as an error) and leaving the job to the reconciler.
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: _terminated.set())


@contextmanager
def sigterm_stops(stop: StopSignal) -> Iterator[None]:
    """While a run lasts, SIGTERM means: stop at the next step, checkpoint, re-queue.

    In a process's main process a handler the host installed (Celery's, in a
    solo pool) still runs after ours, so the worker shuts down after the job is
    handed back. Not in a prefork child: billiard's handler there exits at once.
    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    chain = callable(previous) and not _in_pool_child()

    def handle(signum: int, frame: Any) -> None:
        log.warning("SIGTERM: checkpointing and re-queueing the running job")
        _terminated.set()
        stop.set("shutdown")
        if chain and callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, handle)
    if _terminated.is_set():  # it came before the run: stop at the first step
        log.warning("SIGTERM came before the run: checkpointing and re-queueing the job")
        stop.set("shutdown")
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _in_pool_child() -> bool:
    return multiprocessing_name() != "MainProcess"


def multiprocessing_name() -> str:
    """The billiard (Celery pool) process name: `MainProcess` unless in a pool child."""
    from billiard.process import current_process

    return str(current_process().name)
