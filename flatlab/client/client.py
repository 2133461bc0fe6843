"""`Client`: flatlab's REST API from Python — submit, wait, watch, list, cancel, read as
DataFrames, download, upload.

    from flatlab.client import Client
    with Client() as fl:                     # FLATLAB_URL, FLATLAB_API_KEY
        job = fl.submit("spec.yaml")
        job = fl.wait(job.id)                # a progress bar; returns the finished job
        curves = fl.metrics(job.id, wide=True)

Every method raises a subclass of `flatlab.client.FlatlabError`: `ValidationError`
(422, with `.errors` naming each field), `NotFound`, `Unauthenticated`, …,
`ConnectionFailed` when the API cannot be reached.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from flatlab.client._http import Event, Http
from flatlab.client.models import (
    ApiKey,
    Artifact,
    Benchmark,
    BenchmarkReport,
    Dataset,
    Job,
)
from flatlab.client.specs import is_benchmark, load_spec
from flatlab.client.studies import StudiesMixin
from flatlab.client.waiting import wait_benchmark, wait_job

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_URL = "http://127.0.0.1:8000"
JOB_PLOTS = ("curves", "measures", "landscape_1d", "landscape_2d", "density")
BENCHMARK_PLOTS = ("comparison", "sharpness_gap")


class Client(StudiesMixin):
    """A session with one flatlab API.

    Args:
        url: the API's base URL; default `FLATLAB_URL`, else http://127.0.0.1:8000.
        key: an API key (`flatlab keys create`); default `FLATLAB_API_KEY`; none
            for an embedded stack with auth off.
        timeout: seconds per request (event streams have none).
        retries: how many times a failed request is tried again (see `_http`).
        backoff: seconds before the first retry, doubling each time (at most 8 s).
        http: an `httpx.Client` to send through instead of a new one (tests, proxies).
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = (url or os.environ.get("FLATLAB_URL") or DEFAULT_URL).rstrip("/")
        key = key if key is not None else os.environ.get("FLATLAB_API_KEY") or None
        self._http = Http(
            self.url, key, timeout=timeout, retries=retries, backoff=backoff, http=http
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- submitting ---------------------------------------------------------

    def submit(self, spec: Any, *, idempotency_key: str | None = None) -> Job | Benchmark:
        """A job or a benchmark, told apart by the body (`axes`, `seeds`, `base` or
        `preset` make a benchmark). `spec`: a dict, a pydantic model, or a YAML/JSON path."""
        body = load_spec(spec)
        if is_benchmark(body):
            return self.submit_benchmark(body, idempotency_key=idempotency_key)
        return self.submit_job(body, idempotency_key=idempotency_key)

    def submit_job(self, spec: Any, *, idempotency_key: str | None = None) -> Job:
        """`POST /v1/jobs`; retried safely: each try carries the same Idempotency-Key."""
        body = load_spec(spec)
        data = self._http.json(
            "POST", "/v1/jobs", json=body, idempotent=True, idempotency_key=idempotency_key
        )
        return Job.model_validate(data)

    def submit_benchmark(self, body: Any, *, idempotency_key: str | None = None) -> Benchmark:
        """`POST /v1/benchmarks` (a grid, or `{"preset": NAME}`); retried only when the
        connection failed before the request was sent."""
        data = self._http.json(
            "POST", "/v1/benchmarks", json=load_spec(body), idempotency_key=idempotency_key
        )
        return Benchmark.model_validate(data)

    # --- reading ------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`GET /readyz`: whether the database and broker answer (raises `ServerError` if not)."""
        return dict(self._http.json("GET", "/readyz"))

    def job(self, job_id: str) -> Job:
        return Job.model_validate(self._http.json("GET", f"/v1/jobs/{job_id}"))

    def jobs(
        self, *, limit: int | None = None, page_size: int = 100, **filters: Any
    ) -> Iterator[Job]:
        """The team's jobs, newest first, every page followed; `filters`: status, optimizer,
        model, dataset, tag, benchmark_id, spec_hash. Stops after `limit` jobs if given."""
        for item in self._pages("/v1/jobs", filters, limit, page_size):
            yield Job.model_validate(item)

    def benchmark(
        self, benchmark_id: str, *, metric: str | None = None, order: str | None = None
    ) -> BenchmarkReport:
        """`GET /v1/benchmarks/{id}`: progress, jobs and the comparison ranked on `metric`
        (a summary key; the server's default, final_test_acc, when None) in `order`
        (`desc`: higher is better, the default; or `asc`)."""
        params = {k: v for k, v in (("metric", metric), ("order", order)) if v is not None}
        data = self._http.json("GET", f"/v1/benchmarks/{benchmark_id}", params=params)
        return BenchmarkReport.model_validate(data)

    def benchmarks(
        self, *, limit: int | None = None, page_size: int = 100, **filters: Any
    ) -> Iterator[Benchmark]:
        """The team's benchmarks, newest first, every page followed; `filters`: name, tag."""
        for item in self._pages("/v1/benchmarks", filters, limit, page_size):
            yield Benchmark.model_validate(item)

    def _pages(
        self, path: str, filters: dict[str, Any], limit: int | None, page_size: int
    ) -> Iterator[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        cursor, seen = None, 0
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - seen))
            query = {**params, "limit": size, **({"cursor": cursor} if cursor else {})}
            page = self._http.json("GET", path, params=query)
            for item in page["items"]:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield item
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and seen >= limit):
                return

    def keys(self) -> list[ApiKey]:
        """`GET /v1/keys`: the team's API keys, revoked ones too (ids, prefixes, dates;
        never the secret), every page followed."""
        return [ApiKey.model_validate(k) for k in self._pages("/v1/keys", {}, None, 100)]

    # --- live ---------------------------------------------------------------

    def events(
        self, job_id: str, *, last_event_id: str | None = None, keepalive: bool = False
    ) -> Generator[Event, None, None]:
        """A job's server-sent events (`status`, `metric`) until it ends; resumes after a
        dropped connection without losing or repeating one. `keepalive`: also the
        server's keep-alive pings (every 15 s) as `ping` events, to check a deadline."""
        return self._http.events(f"/v1/jobs/{job_id}/events", last_event_id, keepalive)

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        progress: bool = True,
        raise_on_failure: bool = False,
    ) -> Job:
        """Follow a job's events until it ends, with a progress bar on stderr; the final job.

        Raises `TimeoutError` once `timeout` seconds passed (checked at each event and
        keep-alive, at least every 15 s; the job keeps running) and,
        with `raise_on_failure`, `JobFailed` unless it succeeded.
        """
        return wait_job(self, job_id, timeout, progress, raise_on_failure)

    def wait_benchmark(
        self,
        benchmark_id: str,
        *,
        timeout: float | None = None,
        progress: bool = True,
        poll: float = 1.0,
        raise_on_failure: bool = False,
    ) -> BenchmarkReport:
        """Poll a benchmark until every job ended, one progress bar per configuration."""
        return wait_benchmark(self, benchmark_id, timeout, progress, poll, raise_on_failure)

    # --- changing -----------------------------------------------------------

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job now, or ask a running one to stop at its next step."""
        return Job.model_validate(
            self._http.json("POST", f"/v1/jobs/{job_id}/cancel", idempotent=True)
        )

    def cancel_benchmark(self, benchmark_id: str) -> dict[str, Any]:
        """`POST /v1/benchmarks/{id}/cancel`: cancel every unfinished job of the benchmark."""
        path = f"/v1/benchmarks/{benchmark_id}/cancel"
        return dict(self._http.json("POST", path, idempotent=True) or {})

    def delete_job(self, job_id: str) -> None:
        """`DELETE /v1/jobs/{id}`: a finished job with its metric points and artifacts."""
        self._http.request("DELETE", f"/v1/jobs/{job_id}")

    # --- data ---------------------------------------------------------------

    def metrics(
        self,
        job_id: str,
        *,
        names: list[str] | None = None,
        since_step: int | None = None,
        max_points: int | None = None,
        wide: bool = False,
    ) -> pd.DataFrame:
        """A job's metric series as a DataFrame.

        Long (default): columns name, step, epoch, value, time (UTC). Wide: index
        step, column epoch, then one column per metric. Every page of the series
        is read; `max_points` asks the server instead to downsample each series
        to at most that many points (keeping each bucket's extremes).
        """
        from flatlab.client import frames

        params = {
            "names": ",".join(names) if names else None,
            "since_step": since_step,
            "max_points": max_points,
            "format": "columns",  # arrays a column: no object a point to send or parse
        }
        params = {k: v for k, v in params.items() if v is not None}
        series: dict[str, dict[str, list[Any]]] = {}
        cursor = None
        while True:  # pages (`next_cursor`) split a series; they are joined in step order
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self._http.json("GET", f"/v1/jobs/{job_id}/metrics", params=query)
            for name, columns in frames.as_columns(page).items():
                joined = series.setdefault(name, {key: [] for key in columns})
                for key, values in columns.items():
                    joined[key].extend(values)
            cursor = page.get("next_cursor")
            if not cursor:
                break
        long = frames.metrics_from_columns(series)
        return frames.metrics_wide(long) if wide else long

    def results(
        self,
        *,
        filters: list[str] | None = None,
        group_by: list[str] | None = None,
        metrics: list[str] | None = None,
        fields: list[str] | None = None,
        limit: int | None = None,
        page_size: int = 1000,
    ) -> pd.DataFrame:
        """`GET /v1/results` as a DataFrame: job rows (every page followed, up to `limit`),
        or with `group_by` one row per group with n, mean, std, min, max and 95% CI.

        `filters` are `FIELD:OP:VALUE` strings (`optimizer.rho:gt:0.01`), all must hold.
        """
        from flatlab.client import frames

        params = self._results_params(filters, group_by, metrics, fields)
        if group_by:
            data = self._http.json("GET", "/v1/results", params=params)
            return frames.result_groups(data["groups"], list(group_by))
        return frames.result_rows(list(self._pages("/v1/results", params, limit, page_size)))

    def download_results(
        self,
        path: str | Path,
        *,
        format: str = "csv",
        filters: list[str] | None = None,
        group_by: list[str] | None = None,
        metrics: list[str] | None = None,
        fields: list[str] | None = None,
        limit: int = 50_000,
    ) -> Path:
        """Write `GET /v1/results?format=csv|parquet` to `path` (one page of up to `limit`
        rows; the file's `X-Next-Cursor` header is returned by the API when more remain)."""
        params = self._results_params(filters, group_by, metrics, fields)
        params.update(format=format, limit=limit)
        return self._download("/v1/results", Path(path), params)

    @staticmethod
    def _results_params(*lists: list[str] | None) -> dict[str, Any]:
        filters, group_by, metrics, fields = lists
        params: dict[str, Any] = {"filter": list(filters or [])}
        for name, values in (("group_by", group_by), ("metrics", metrics), ("fields", fields)):
            if values:
                params[name] = ",".join(values)
        return params

    def comparison(
        self, benchmark_id: str, *, metric: str | None = None, wide: bool = False
    ) -> pd.DataFrame:
        """A benchmark's statistics over seeds: one row per (configuration, metric) with
        runs, succeeded, n, mean, std, ci_low, ci_high; `wide`: configurations × metrics
        of the mean."""
        from flatlab.client import frames

        long = frames.comparison_long(self.benchmark(benchmark_id, metric=metric).comparison)
        return frames.comparison_wide(long) if wide else long

    def paired_tests(self, benchmark_id: str) -> pd.DataFrame:
        """Each configuration against the baseline, paired by seed (t-test, Wilcoxon)."""
        from flatlab.client import frames

        return frames.paired_tests(self.benchmark(benchmark_id).comparison)

    # --- files --------------------------------------------------------------

    def artifacts(self, job_id: str) -> list[Artifact]:
        items = self._http.json("GET", f"/v1/jobs/{job_id}/artifacts")["items"]
        return [Artifact.model_validate(a) for a in items]

    def download_artifact(self, job_id: str, name: str, path: str | Path | None = None) -> Path:
        """Save one artifact to `path` (default: its file name in the current folder)."""
        target = Path(path) if path is not None else Path(Path(name).name)
        if target.is_dir():
            target = target / Path(name).name
        return self._download(f"/v1/jobs/{job_id}/artifacts/{name}", target, None)

    def upload_dataset(self, path: str | Path, *, name: str | None = None) -> Dataset:
        """Upload an `.npz` with x_train, y_train, x_test, y_test; train on it with the
        returned `.data` as a spec's `data` block."""
        source = Path(path)

        def files() -> dict[str, tuple[str, IO[bytes], str]]:
            return {"file": (source.name, source.open("rb"), "application/octet-stream")}

        data = {"name": name} if name else None
        response = self._http.request("POST", "/v1/datasets", files=files, data=data)
        return Dataset.model_validate(response.json())

    def plot_job(
        self,
        job_id: str,
        kind: str = "curves",
        *,
        format: str = "png",
        path: str | Path | None = None,
    ) -> bytes | Path:
        """A job's plot (`kind` in curves, measures, landscape_1d, landscape_2d, density)
        rendered by the server as PNG or SVG: the bytes, or the file written at `path`."""
        return self._plot(f"/v1/jobs/{job_id}/plots/{kind}", {"format": format}, path)

    def plot_benchmark(
        self,
        benchmark_id: str,
        kind: str = "comparison",
        *,
        metric: str | None = None,
        format: str = "png",
        path: str | Path | None = None,
    ) -> bytes | Path:
        """A benchmark's plot (`kind` in comparison, sharpness_gap), of summary `metric`."""
        params = {"format": format, **({"metric": metric} if metric else {})}
        return self._plot(f"/v1/benchmarks/{benchmark_id}/plots/{kind}", params, path)

    def _plot(self, route: str, params: dict[str, str], path: str | Path | None) -> bytes | Path:
        if path is not None:
            return self._download(route, Path(path), params)
        return self._http.request("GET", route, params=params).content

    def _download(self, route: str, target: Path, params: Any) -> Path:
        partial = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with partial.open("wb") as sink:
                self._http.stream_to(route, sink, params)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target
