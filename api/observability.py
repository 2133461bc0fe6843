"""Prometheus metrics of the API: requests by route and status, latency, jobs by status.

Each app has its own registry, so several apps in one process (tests) do not
collide; `/metrics` fills the jobs gauge from the database when scraped.
"""

from __future__ import annotations

from time import perf_counter

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "flatlab_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "flatlab_http_request_duration_seconds",
            "time to answer an HTTP request (a live event stream counts until it ends)",
            ["method", "route"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "flatlab_jobs", "jobs by status, all teams", ["status"], registry=self.registry
        )


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled by route template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = perf_counter(), 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(perf_counter() - start)
