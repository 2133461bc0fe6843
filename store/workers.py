"""Which workers are alive and which queues they consume, from the `workers` table.

Each worker process keeps one row, refreshed by a heartbeat with the
database's own `now()`; a row older than `stale_seconds` by that same clock
is a worker that is gone. So the API knows which queues have live consumers
with one query, without asking the broker, and a job sent to a queue nobody
consumes can say so. Functions flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store.models import Worker

QUEUES = ("gpu", "cpu")

# What to run so that a queue has a consumer.
_START = {
    "gpu": "`flatlab worker --gpu N` on a machine with a GPU",
    "cpu": "`flatlab worker --queues cpu`, or `flatlab worker --gpu N --queues gpu,cpu`",
}


def database_now(session: Session) -> datetime:
    """The database's clock, timezone-aware UTC (SQLite's CURRENT_TIMESTAMP is naive UTC)."""
    now = session.scalar(select(func.now()))
    if not isinstance(now, datetime):  # a driver that returns text
        now = datetime.fromisoformat(str(now))
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def register_worker(
    *,
    session: Session,
    worker_id: str,
    hostname: str,
    pid: int,
    queues: Iterable[str],
    devices: Iterable[str],
    clock_offset_seconds: float | None = None,
) -> None:
    """Insert or replace this worker's row, seen now (by the database's clock)."""
    session.execute(delete(Worker).where(Worker.id == worker_id))
    now = database_now(session)
    session.add(
        Worker(
            id=worker_id,
            hostname=hostname,
            pid=pid,
            queues=sorted(set(queues)),
            devices=list(devices),
            started_at=now,
            last_seen=now,
            clock_offset_seconds=clock_offset_seconds,
        )
    )
    session.flush()


def touch_worker(
    *, session: Session, worker_id: str, clock_offset_seconds: float | None = None
) -> bool:
    """Stamp the worker seen now; False when its row is gone (then register it again).

    `clock_offset_seconds`: the worker's clock minus the database's, as it measured it.
    """
    stmt = (
        update(Worker)
        .where(Worker.id == worker_id)
        .values(last_seen=func.now(), clock_offset_seconds=clock_offset_seconds)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def remove_worker(*, session: Session, worker_id: str) -> None:
    """Forget a worker that is stopping: it takes no new job from now on."""
    session.execute(delete(Worker).where(Worker.id == worker_id))


def clock_offset(session: Session, host_now: Callable[[], datetime]) -> float:
    """This host's clock minus the database's, in seconds (positive: the host runs ahead).

    The database is read between two readings of `host_now`, whose midpoint
    stands for the moment it answered; the error is at most half a round trip.
    """
    before = host_now()
    db_now = database_now(session)
    after = host_now()
    return ((before - db_now) + (after - db_now)).total_seconds() / 2


def skewed_workers(
    *, session: Session, stale_seconds: float, bound_seconds: float
) -> dict[str, float]:
    """Live workers whose clock is off the database's by more than `bound_seconds`: id → offset."""
    return {
        w.id: round(w.clock_offset_seconds, 3)
        for w in live_workers(session=session, stale_seconds=stale_seconds)
        if w.clock_offset_seconds is not None and abs(w.clock_offset_seconds) > bound_seconds
    }


def prune_workers(*, session: Session, older_than_seconds: float) -> int:
    """Delete rows of workers not seen for `older_than_seconds`; how many went."""
    cutoff = database_now(session) - timedelta(seconds=older_than_seconds)
    gone = [w.id for w in session.scalars(select(Worker)) if _aware(w.last_seen) < cutoff]
    if gone:
        session.execute(delete(Worker).where(Worker.id.in_(gone)))
    return len(gone)


def live_workers(*, session: Session, stale_seconds: float) -> list[Worker]:
    """Workers seen within `stale_seconds` of the database's clock, by id."""
    cutoff = database_now(session) - timedelta(seconds=stale_seconds)
    rows = session.scalars(select(Worker).order_by(Worker.id))
    return [w for w in rows if _aware(w.last_seen) >= cutoff]


def live_queues(*, session: Session, stale_seconds: float) -> dict[str, list[str]]:
    """Each known queue (and any other one a live worker consumes) → its live workers' ids."""
    out: dict[str, list[str]] = {queue: [] for queue in QUEUES}
    for worker in live_workers(session=session, stale_seconds=stale_seconds):
        for queue in worker.queues:
            out.setdefault(queue, []).append(worker.id)
    return out


def live_widths(*, session: Session, stale_seconds: float) -> dict[str, int]:
    """Each queue with a live worker → the most devices one of them holds (at least 1).

    A data-parallel job on `gpu` needs one worker holding `resources.devices` GPUs
    (`flatlab worker --gpus 0,1,…`); a CPU worker runs any number of gloo ranks.
    """
    out: dict[str, int] = {}
    for worker in live_workers(session=session, stale_seconds=stale_seconds):
        for queue in worker.queues:
            out[queue] = max(out.get(queue, 1), len(worker.devices or []))
    return out


def resolve_auto_queue(setting: str, live: dict[str, list[str]]) -> str:
    """The queue of a `training.device: auto` job under `FLATLAB_AUTO_QUEUE` = `setting`.

    `live` (the default): `gpu` while a live worker consumes it, else `cpu`;
    `cpu` or `gpu`: always that queue.
    """
    if setting != "live":
        return setting
    return "gpu" if live.get("gpu") else "cpu"


def waiting_reason(
    queue: str,
    live: dict[str, list[str]],
    *,
    devices: int = 1,
    widths: dict[str, int] | None = None,
) -> str | None:
    """Why a queued job on `queue` cannot start, or None while a live worker can take it.

    `devices` is the job's `resources.devices`; on `gpu` it needs a live worker
    holding that many GPUs (`widths`, from `live_widths`).
    """
    if live.get(queue):
        widest = (widths or {}).get(queue, 1)
        if queue == "gpu" and devices > widest:
            ids = ",".join(str(i) for i in range(devices))
            return (
                f"resources.devices {devices}: the widest live gpu worker holds {widest} "
                f"GPU(s); the job waits for one started with `flatlab worker --gpus {ids}`"
            )
        return None
    start = _START.get(queue, f"a worker with `--queues {queue}`")
    return (
        f"no live worker consumes queue {queue!r}: the job waits until one starts ({start}). "
        "GET /readyz lists the queues and their live workers"
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
