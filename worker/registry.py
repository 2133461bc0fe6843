"""A worker's own row in the `workers` table: registered when ready, refreshed, removed on stop.

The worker's parent process runs `WorkerRegistration` as a thread: it writes
the row (node name, host, pid, the queues this worker consumes, its devices)
once the worker is ready, stamps `last_seen` with the database's clock every
`heartbeat_seconds`, and deletes the row as soon as a shutdown begins, so the
API stops counting it at once. A worker that dies without a word is counted
until its row is `worker_stale_seconds` old. Rows of workers gone for a day
are pruned by whichever worker registers next.

Each beat also measures this host's clock against the database's and stores
the offset in the row; past `clock_skew_seconds` it is logged (and `/readyz`
lists the worker). Leases never depend on it: they use the database's clock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from flatlab.settings import Settings
from store.db import make_engine, make_session_factory, session_scope
from store.models import utcnow
from store.workers import (
    clock_offset,
    prune_workers,
    register_worker,
    remove_worker,
    touch_worker,
)

log = logging.getLogger(__name__)

PRUNE_AFTER_SECONDS = 24 * 3600


def visible_devices(environ: dict[str, str] | None = None) -> list[str]:
    """The devices a worker may use, from `CUDA_VISIBLE_DEVICES` (`flatlab worker --gpu N`).

    The parent never imports torch, so this reads the environment only:
    `["cuda:0"]` for `CUDA_VISIBLE_DEVICES=0`, `["cpu"]` when it is unset or empty.
    """
    value = (environ if environ is not None else os.environ).get("CUDA_VISIBLE_DEVICES", "")
    ids = [part.strip() for part in value.split(",") if part.strip() and part.strip() != "-1"]
    return [f"cuda:{i}" for i in ids] or ["cpu"]


class WorkerRegistration(threading.Thread):
    """Keeps this worker's row fresh until `close()`, which deletes it."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        worker_id: str,
        queues: Iterable[str],
        interval: float,
        devices: list[str] | None = None,
        skew_bound: float = 2.0,
    ) -> None:
        super().__init__(name="flatlab-registration", daemon=True)
        self.factory, self.worker_id, self.interval = factory, worker_id, interval
        self.queues = sorted(set(queues))
        self.devices = devices if devices is not None else visible_devices()
        self.skew_bound = skew_bound
        self._done = threading.Event()

    def offset(self, session: Session) -> float:
        """Measure this host's clock against the database's; say so when it is off."""
        offset = clock_offset(session, utcnow)
        if abs(offset) > self.skew_bound:
            log.warning(
                "worker %s: this host's clock is %+.1f s off the database's (bound %.1f s); "
                "leases use the database's clock, but fix the host's time (NTP)",
                self.worker_id,
                offset,
                self.skew_bound,
            )
        return offset

    def register(self) -> None:
        with session_scope(self.factory) as session:
            prune_workers(session=session, older_than_seconds=PRUNE_AFTER_SECONDS)
            register_worker(
                session=session,
                worker_id=self.worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                queues=self.queues,
                devices=self.devices,
                clock_offset_seconds=self.offset(session),
            )
        log.info(
            "worker %s registered: queues %s, devices %s", self.worker_id, self.queues, self.devices
        )

    def beat(self) -> None:
        with session_scope(self.factory) as session:
            offset = self.offset(session)
            if touch_worker(session=session, worker_id=self.worker_id, clock_offset_seconds=offset):
                return
        self.register()  # the row was pruned or deleted meanwhile

    def run(self) -> None:
        try:
            self.register()
        except Exception as exc:  # the database may be away: the next beat registers
            log.warning("worker %s: registration failed: %s", self.worker_id, exc)
        while not self._done.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:
                log.warning("worker %s: heartbeat failed: %s", self.worker_id, exc)

    def close(self) -> None:
        """Stop beating and delete the row (a shutdown has begun: no new jobs here)."""
        self._done.set()
        self.join(timeout=self.interval + 5)
        try:
            with session_scope(self.factory) as session:
                remove_worker(session=session, worker_id=self.worker_id)
        except Exception as exc:  # the row goes stale on its own
            log.warning("worker %s: could not remove its row: %s", self.worker_id, exc)
        else:
            log.info("worker %s: unregistered", self.worker_id)


_engine: Engine | None = None


def start_registration(
    settings: Settings, worker_id: str, queues: Iterable[str]
) -> WorkerRegistration:
    """Start the registration thread of a worker's parent process."""
    global _engine
    _engine = make_engine(settings.db_url, pool_size=1, max_overflow=1)
    thread = WorkerRegistration(
        make_session_factory(_engine),
        worker_id=worker_id,
        queues=queues,
        interval=settings.heartbeat_seconds,
        skew_bound=settings.clock_skew_seconds,
    )
    thread.start()
    return thread


def forget_parent_engine() -> None:
    """In a forked child: drop the parent's pooled connections without closing them."""
    if _engine is not None:
        _engine.dispose(close=False)
