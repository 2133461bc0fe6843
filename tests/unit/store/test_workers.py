"""Worker liveness by the database's clock: registered, refreshed, stale, removed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from store.db import session_scope
from store.models import Worker
from store.workers import (
    database_now,
    live_queues,
    live_workers,
    prune_workers,
    register_worker,
    remove_worker,
    resolve_auto_queue,
    touch_worker,
    waiting_reason,
)


def _register(factory: sessionmaker[Session], worker_id: str, queues: list[str]) -> None:
    with session_scope(factory) as session:
        register_worker(
            session=session,
            worker_id=worker_id,
            hostname="lab1",
            pid=42,
            queues=queues,
            devices=["cuda:0"] if "gpu" in queues else ["cpu"],
        )


def _age(factory: sessionmaker[Session], worker_id: str, seconds: float) -> None:
    """Set the worker last seen `seconds` ago by the database's clock."""
    with session_scope(factory) as session:
        seen = database_now(session) - timedelta(seconds=seconds)
        session.execute(update(Worker).where(Worker.id == worker_id).values(last_seen=seen))


def test_a_registered_worker_is_live_on_each_queue_it_consumes(
    factory: sessionmaker[Session],
) -> None:
    _register(factory, "gpu0@lab1", ["gpu", "cpu"])
    _register(factory, "cpu@lab2", ["cpu"])
    with session_scope(factory) as session:
        live = live_queues(session=session, stale_seconds=30)
        workers = live_workers(session=session, stale_seconds=30)
    assert live == {"gpu": ["gpu0@lab1"], "cpu": ["cpu@lab2", "gpu0@lab1"]}
    assert [(w.id, w.queues, w.devices) for w in workers] == [
        ("cpu@lab2", ["cpu"], ["cpu"]),
        ("gpu0@lab1", ["cpu", "gpu"], ["cuda:0"]),
    ]


def test_a_worker_not_seen_within_the_stale_window_is_not_live_until_it_beats(
    factory: sessionmaker[Session],
) -> None:
    _register(factory, "gpu0@lab1", ["gpu"])
    _age(factory, "gpu0@lab1", 120)
    with session_scope(factory) as session:
        assert live_queues(session=session, stale_seconds=30)["gpu"] == []
        assert live_queues(session=session, stale_seconds=300)["gpu"] == ["gpu0@lab1"]
        assert touch_worker(session=session, worker_id="gpu0@lab1")
    with session_scope(factory) as session:
        assert live_queues(session=session, stale_seconds=30)["gpu"] == ["gpu0@lab1"]


def test_a_removed_worker_is_gone_and_its_beat_says_so(factory: sessionmaker[Session]) -> None:
    _register(factory, "cpu@lab2", ["cpu"])
    with session_scope(factory) as session:
        remove_worker(session=session, worker_id="cpu@lab2")
    with session_scope(factory) as session:
        assert live_queues(session=session, stale_seconds=30) == {"gpu": [], "cpu": []}
        assert not touch_worker(session=session, worker_id="cpu@lab2")


def test_registering_again_replaces_the_row_and_prune_removes_old_rows(
    factory: sessionmaker[Session],
) -> None:
    _register(factory, "w@lab1", ["cpu"])
    _register(factory, "w@lab1", ["gpu"])
    _register(factory, "old@lab3", ["cpu"])
    _age(factory, "old@lab3", 2 * 24 * 3600)
    with session_scope(factory) as session:
        assert prune_workers(session=session, older_than_seconds=24 * 3600) == 1
    with session_scope(factory) as session:
        assert live_queues(session=session, stale_seconds=10**9) == {"gpu": ["w@lab1"], "cpu": []}


def test_auto_jobs_go_to_gpu_only_while_a_gpu_worker_is_live() -> None:
    assert resolve_auto_queue("live", {"gpu": ["g"], "cpu": []}) == "gpu"
    assert resolve_auto_queue("live", {"gpu": [], "cpu": ["c"]}) == "cpu"
    assert resolve_auto_queue("live", {"gpu": [], "cpu": []}) == "cpu"
    assert resolve_auto_queue("cpu", {"gpu": ["g"], "cpu": []}) == "cpu"
    assert resolve_auto_queue("gpu", {"gpu": [], "cpu": ["c"]}) == "gpu"


def test_the_waiting_reason_names_the_queue_and_what_to_start() -> None:
    live = {"gpu": [], "cpu": ["c"]}
    assert waiting_reason("cpu", live) is None
    reason = waiting_reason("gpu", live)
    assert reason is not None and "'gpu'" in reason and "flatlab worker --gpu N" in reason
    cpu_reason = waiting_reason("cpu", {"gpu": ["g"]})
    assert cpu_reason is not None and "--queues" in cpu_reason
