"""The Celery application both sides share: the API sends job ids, the worker runs them.

The API only calls `enqueue_job`, which sends by task name, so it never
imports torch or `worker`. The broker carries job ids and nothing else;
PostgreSQL (or SQLite embedded) is the source of truth, so results are off.
"""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from flatlab.settings import Settings, get_settings

RUN_JOB_TASK = "worker.tasks.run_job"
RUN_ENSEMBLE_TASK = "worker.tasks.run_ensemble"


def make_celery(settings: Settings) -> Celery:
    app = Celery("flatlab", broker=settings.broker)
    conf: dict[str, object] = {
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": False,  # the reconciler re-queues, not the broker
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "cpu",
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
    if settings.broker.startswith("filesystem"):
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": settings.broker_poll_seconds,  # kombu's default: 1 s
        }
    elif settings.broker.startswith(("redis", "rediss")):
        # Above the longest job allowed, so Redis never redelivers a running job (Celery #5935).
        conf["broker_transport_options"] = {"visibility_timeout": 8 * 24 * 3600}
    app.conf.update(conf)
    return app


@lru_cache
def get_celery() -> Celery:
    return make_celery(get_settings())


def enqueue_job(job_id: str, queue: str, app: Celery | None = None) -> None:
    """Send a job id to the workers of `queue` (call after the job's row is committed)."""
    (app or get_celery()).send_task(RUN_JOB_TASK, args=[job_id], queue=queue)


def enqueue_ensemble(job_ids: list[str], queue: str, app: Celery | None = None) -> None:
    """Send a group of job ids that one worker trains as one seed ensemble."""
    (app or get_celery()).send_task(RUN_ENSEMBLE_TASK, args=[job_ids], queue=queue)
