"""Run one database transaction, retrying through outages: a worker never drops a write.

A training run outlives many database blips (a failover, a restart, a locked
SQLite file). Each write is a small idempotent transaction, so it is simply
tried again with exponential backoff; only after `give_up_after` seconds of
failure does the error propagate, and then the lease expires and the
reconciler gives the job to another worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.db import session_scope

T = TypeVar("T")
TRANSIENT = (OperationalError, InterfaceError, DisconnectionError)

log = logging.getLogger(__name__)


def in_transaction(
    factory: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    what: str,
    give_up_after: float = 300.0,
    first_delay: float = 0.2,
    max_delay: float = 10.0,
) -> T:
    """`work(session)` in one committed transaction, retried on transient database errors."""
    start = time.monotonic()
    delay = first_delay
    while True:
        try:
            with session_scope(factory) as session:
                return work(session)
        except TRANSIENT as exc:
            if time.monotonic() - start > give_up_after:
                raise
            log.warning("%s failed (%s); retrying in %.1fs", what, _first_line(exc), delay)
            time.sleep(delay)
            delay = min(delay * 2, max_delay)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
