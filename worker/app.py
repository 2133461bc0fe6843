"""The worker's Celery app: the shared flatlab app plus queues, routes and GPU-safe pool settings.

Run it with `flatlab worker` (or `celery -A worker.app worker`). The parent
process never imports torch, so it never touches CUDA: each job runs in a
fresh prefork child (`worker_max_tasks_per_child=1`), which is the only way
to hand a CUDA context back to the driver. A job starts fast all the same:
each new child imports torch, sam_core and the runner as soon as it is
forked (`_warm_up`), while it waits for its one job, so the import is paid
between jobs rather than after a job arrives. The parent also runs the
reconciler thread and, on shutdown, asks its children to checkpoint and
give their jobs back to the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from billiard import process as billiard_process
from celery import Celery, signals
from kombu import Queue

from flatlab.broker import RUN_JOB_TASK, make_celery
from flatlab.settings import Settings, get_settings
from worker.heartbeat import mark_stopping
from worker.registry import WorkerRegistration, start_registration

QUEUES = ("gpu", "cpu")
# How long a new pool child may take to import torch, sam_core and the runner.
WARM_UP_TIMEOUT_S = 300.0

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = make_celery(settings)
    app.conf.update(
        include=["worker.tasks"],
        task_queues=[Queue(name, routing_key=name) for name in QUEUES],
        task_routes={RUN_JOB_TASK: {"queue": "cpu"}},
        worker_max_tasks_per_child=1,
        # A new child imports torch and the runner before it tells the parent it is up
        # (`_warm_up`): seconds on a busy machine, past Celery's 4 s, which would kill it.
        worker_proc_alive_timeout=WARM_UP_TIMEOUT_S,
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
def _prepare_pool_child(**_: Any) -> None:
    """A forked child must not use or close the parent's database connections.

    It also remembers SIGTERM rather than dying of it (`remember_sigterm`),
    then warms up for its job (`_warm_up`).
    """
    from worker import reconciler, registry
    from worker.heartbeat import remember_sigterm

    reconciler.forget_parent_engine()
    registry.forget_parent_engine()
    remember_sigterm()
    _warm_up()


def _warm_up() -> None:
    """Import what a job needs now, in this fresh child, before any job is sent to it.

    torch, sam_core (its data sets' libraries included) and the runner take
    seconds to import; done here, they are in place when the job arrives, and
    the job only pays for its claim. So does torch's first optimizer, which
    imports torch._dynamo (seconds more): one is built here on a CPU tensor.
    Nothing here touches CUDA: a job's CUDA context is made by the job, in
    this child, and leaves with it. The git commit of the reproducibility
    block is read now too (a subprocess). A failure is logged and left to the
    job, which meets it again and fails with the reason.
    """
    from worker.heartbeat import parent_stopping, terminated

    # The worker is stopping: this child will run nothing, and importing torch now
    # would only take CPU from a running job's last checkpoint and hand-back.
    if terminated() or parent_stopping():
        return
    started = time.monotonic()
    try:
        import torch

        import worker.ensemble_runner  # noqa: F401  (imports worker.runner, torch, sam_core)
        from worker.reproducibility import git_commit

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
        git_commit()
    except Exception:
        log.exception("pool child %d: warm-up failed; its job will import on demand", os.getpid())
        return
    log.info("pool child %d warm in %.2f s", os.getpid(), time.monotonic() - started)


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
