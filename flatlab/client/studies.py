"""The client's studies: create, read, list, wait for and cancel Optuna-driven searches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from flatlab.client.models import Study, StudyReport
from flatlab.client.specs import load_spec

if TYPE_CHECKING:
    from flatlab.client._http import Http


class StudiesMixin:
    """Methods of `Client` for `/v1/studies`."""

    _http: Http

    if TYPE_CHECKING:  # `Client`'s, which this is mixed into

        def _pages(
            self, path: str, filters: dict[str, Any], limit: int | None, page_size: int
        ) -> Iterator[dict[str, Any]]: ...

    def submit_study(self, body: Any) -> Study:
        """`POST /v1/studies`: a base spec with `data.validation_fraction`, a
        `search_space` over dotted spec paths, `sampler`, `pruner`, `budget` and a
        validation `objective`. `body`: a dict, a pydantic model or a YAML/JSON path.
        Raises `ValidationError` naming the field (a test-set objective, a path the
        optimizer lacks)."""
        return Study.model_validate(self._http.json("POST", "/v1/studies", json=load_spec(body)))

    def study(self, study_id: str) -> StudyReport:
        """`GET /v1/studies/{id}`: best so far, every trial, and the tuning curve."""
        return StudyReport.model_validate(self._http.json("GET", f"/v1/studies/{study_id}"))

    def studies(
        self, *, limit: int | None = None, page_size: int = 100, **filters: Any
    ) -> Iterator[Study]:
        """The team's studies, newest first, every page followed; `filters`: status,
        benchmark_id."""
        for item in self._pages("/v1/studies", filters, limit, page_size):
            yield Study.model_validate(item)

    def cancel_study(self, study_id: str) -> dict[str, Any]:
        """`POST /v1/studies/{id}/cancel`: no more trials; unfinished trial jobs stop."""
        path = f"/v1/studies/{study_id}/cancel"
        return dict(self._http.json("POST", path, idempotent=True) or {})

    def wait_study(
        self,
        study_id: str,
        *,
        timeout: float | None = None,
        poll: float = 1.0,
        on_update: Callable[[StudyReport], None] | None = None,
    ) -> StudyReport:
        """Poll until the study ended; `on_update(report)` after each poll. Raises
        `TimeoutError` after `timeout` seconds (the study keeps running)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            report = self.study(study_id)
            if on_update is not None:
                on_update(report)
            if report.done:
                return report
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"study {study_id} still running after {timeout} s")
            time.sleep(poll)

    def study_trials(self, study_id: str) -> pd.DataFrame:
        """One row per trial: number, state, value, job id and status, and one column per
        searched path (`optimizer.base.lr`, …)."""
        rows = []
        for trial in self.study(study_id).trials:
            row = {k: v for k, v in trial.items() if k != "params"}
            row.update(trial.get("params") or {})
            rows.append(row)
        return pd.DataFrame(rows)
