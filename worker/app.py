"""The worker's Celery app: the shared flatlab app plus queues, routes and GPU-safe pool settings.

Run it with `flatlab worker` (or `celery -A worker.app worker`). The parent
process never imports torch, so it never touches CUDA: each job runs in a
fresh prefork child (`worker_max_tasks_per_child=1`), which is the only way
to hand a CUDA context back to the driver. The parent also runs the
reconciler thread and, on shutdown, asks its children to checkpoint and
give their jobs back to the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from billiard import process as billiard_process
from celery import Celery, signals
from kombu import Queue

from flatlab.broker import RUN_JOB_TASK, make_celery
from flatlab.settings import Settings, get_settings
from worker.heartbeat import mark_stopping
from worker.registry import WorkerRegistration, start_registration

QUEUES = ("gpu", "cpu")

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = make_celery(settings)
    app.conf.update(
        include=["worker.tasks"],
        task_queues=[Queue(name, routing_key=name) for name in QUEUES],
        task_routes={RUN_JOB_TASK: {"queue": "cpu"}},
        worker_max_tasks_per_child=1,
        # On broker connection loss, stop rather than run twice; the reconciler re-queues.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_send_task_events=False,
        worker_enable_remote_control=not settings.broker.startswith("filesystem"),
    )
    return app


app = create_app()

# Set in the parent when shutdown begins. Pool children forked after that (a fresh
# child per job) inherit it, so a job the shutdown hands back is not started again
# here: it stays queued, and the reconciler of a live worker sends it on.
_shutting_down = False


def shutting_down() -> bool:
    """Whether this worker is stopping: its parent began a shutdown, or this child got SIGTERM."""
    from worker.heartbeat import terminated

    return _shutting_down or terminated()


_registration: WorkerRegistration | None = None


@signals.worker_ready.connect
def _start_reconciler(sender: Any = None, **_: Any) -> None:
    from worker.reconciler import start_reconciler

    start_reconciler(get_settings(), app)


@signals.worker_ready.connect
def _register(sender: Any = None, **_: Any) -> None:
    """Make this worker and its queues known, so the API can tell a job that nobody waits."""
    global _registration
    queues = list(app.amqp.queues.consume_from or QUEUES)
    hostname = getattr(sender, "hostname", None) or f"worker-{os.getpid()}"
    _registration = start_registration(get_settings(), hostname, queues)


@signals.worker_process_init.connect
def _forget_parent_connections(**_: Any) -> None:
    """A forked child must not use or close the parent's database connections.

    It also remembers SIGTERM rather than dying of it (`remember_sigterm`).
    """
    from worker import reconciler, registry
    from worker.heartbeat import remember_sigterm

    reconciler.forget_parent_engine()
    registry.forget_parent_engine()
    remember_sigterm()


@signals.worker_shutting_down.connect
def _ask_children_to_checkpoint(sig: str = "", how: str = "", **_: Any) -> None:
    """SIGTERM each pool child: its runner checkpoints, re-queues its job and returns.

    `terminate_controlled` marks the stop as ours, so the pool does not log an
    idle child's exit by SIGTERM as an error: a normal stop logs at INFO.
    """
    global _shutting_down
    _shutting_down = True
    mark_stopping()  # the children's SIGTERM below is a graceful hand-back
    log.info("shutdown (%s, %s): no new jobs; running jobs checkpoint and go back", sig, how)
    if _registration is not None:
        _registration.close()
    for child in billiard_process.active_children():
        if child.pid is not None:
            log.info("shutdown: stopping pool child %s (a running job checkpoints)", child.pid)
            with contextlib.suppress(ProcessLookupError):
                child.terminate_controlled()
