"""MLflow's own tracking store, the reference for metric ingest and history reads.

`MlflowReference` wraps `mlflow.store.tracking.sqlalchemy_store.SqlAlchemyStore`
(what an MLflow tracking server runs over a SQL database) on a database of its
own, created on the benchmark's PostgreSQL server and dropped afterwards. MLflow
is a bench-only dependency: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tests.pg import temporary_database

Point = tuple[str, int, float, float]  # name, step, epoch, value


class MlflowReference:
    """One MLflow experiment; each `new_run` is a run to log into."""

    def __init__(self, store: Any) -> None:
        from mlflow.entities import Metric

        self.store, self.metric = store, Metric
        self.experiment = store.create_experiment(f"bench-{time.time_ns()}")

    def new_run(self) -> str:
        run = self.store.create_run(
            self.experiment, user_id="bench", start_time=0, tags=[], run_name="bench"
        )
        return str(run.info.run_id)

    def log_batch(self, run_id: str, points: Sequence[Point]) -> None:
        """One `log_batch` call (MLflow takes at most 1,000 metrics per call)."""
        stamp = int(time.time() * 1000)
        metrics = [self.metric(name, value, stamp, step) for name, step, _, value in points]
        self.store.log_batch(run_id, metrics=metrics, params=[], tags=[])

    def history(self, run_id: str, name: str) -> list[Any]:
        return list(self.store.get_metric_history(run_id, name))


@contextmanager
def mlflow_reference() -> Iterator[MlflowReference]:
    """An MLflow SQL store on a throwaway database of the benchmark's PostgreSQL server."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with temporary_database("flatlab_bench_mlflow") as url, tempfile.TemporaryDirectory() as root:
        store = SqlAlchemyStore(url, root)
        try:
            yield MlflowReference(store)
        finally:
            store.engine.dispose()
