"""The client's HTTP layer: auth, retries with a generated Idempotency-Key, errors, SSE.

Retried (with exponential backoff, honouring `Retry-After`): any request whose
connection failed before it was sent, and, for requests safe to repeat (reads,
cancels, job submissions — the API replays a job submission that carries the
same `Idempotency-Key`), timeouts, dropped connections and 429/502/503/504
answers. Every POST carries an `Idempotency-Key` generated once per call and
reused by each of its retries.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from flatlab.client.errors import ConnectionFailed, error_for

RETRY_STATUSES = frozenset({429, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


@dataclass(frozen=True)
class Event:
    """One server-sent event: its type (`status`, `metric`), id and decoded JSON data."""

    event: str
    id: str | None
    data: Any


class Http:
    """An `httpx.Client` with the API key, the retry policy and typed errors."""

    def __init__(
        self,
        url: str,
        key: str | None,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        http: httpx.Client | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if http is None:
            self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout)
        else:  # a given client (a test's ASGI client, a proxy-configured one) keeps its own URL
            self.http = http
            self.http.headers.update(headers)
        self.retries, self.backoff = retries, backoff

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        files: Callable[[], Any] | None = None,
        data: dict[str, str] | None = None,
        idempotent: bool | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """One call, retried as the module says; a non-2xx answer raises its `ApiError`.

        `files` is called once per attempt, so each retry sends the file from its start.
        """
        headers = {}
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        safe = method in SAFE_METHODS if idempotent is None else idempotent
        attempt = 0
        while True:
            try:
                response = self.http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    files=files() if files else None,
                    data=data,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                retryable = isinstance(exc, httpx.ConnectError) or safe
                if not retryable or attempt >= self.retries:
                    raise ConnectionFailed(f"{method} {path}: {_reason(exc)}") from exc
            else:
                if response.is_success:
                    return response
                if not (safe and response.status_code in RETRY_STATUSES) or (
                    attempt >= self.retries
                ):
                    raise error_for(response)
                time.sleep(self._delay(attempt, response))
                attempt += 1
                continue
            time.sleep(self._delay(attempt, None))
            attempt += 1

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = response.headers.get("Retry-After", "")
            if after.isdigit():
                return min(float(after), 60.0)
        return float(min(self.backoff * 2**attempt, 8.0))

    def stream_to(self, path: str, sink: Any, params: Any = None) -> httpx.Headers:
        """GET `path` and write its body into the binary file `sink` in chunks."""
        for attempt in range(self.retries + 1):
            try:
                with self.http.stream("GET", path, params=params) as response:
                    if not response.is_success:
                        response.read()
                        raise error_for(response)
                    sink.seek(0)
                    sink.truncate()
                    for chunk in response.iter_bytes():
                        sink.write(chunk)
                    return response.headers
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise ConnectionFailed(f"GET {path}: {_reason(exc)}") from exc
                time.sleep(self._delay(attempt, None))
        raise AssertionError("unreachable")

    def events(
        self, path: str, last_event_id: str | None = None, keepalive: bool = False
    ) -> Generator[Event, None, None]:
        """Server-sent events of `path` until the server ends the stream.

        A dropped connection is resumed with `Last-Event-ID` (at most `retries`
        times in a row), so no event is lost or repeated. With `keepalive`, the
        server's keep-alive comments come as `ping` events too.
        """
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            try:
                with self.http.stream("GET", path, headers=headers, timeout=None) as response:
                    if not response.is_success:
                        response.read()
                        raise error_for(response)
                    for event in parse_sse(response.iter_lines(), keepalive):
                        failures = 0
                        if event.id is not None:
                            last_event_id = event.id
                        yield event
                return
            except httpx.TransportError as exc:
                failures += 1
                if failures > self.retries:
                    raise ConnectionFailed(f"GET {path}: {_reason(exc)}") from exc
                time.sleep(self._delay(failures - 1, None))


def parse_sse(lines: Iterator[str], keepalive: bool = False) -> Iterator[Event]:
    """Events from the lines of a `text/event-stream` (WHATWG HTML, "server-sent events").

    Comment lines (`: ping`) are skipped, or with `keepalive` yielded as
    `Event("ping", None, text)`; `data` lines of one event are joined with
    newlines and decoded as JSON when they are JSON, else kept as text.
    """
    kind: str = "message"
    event_id: str | None = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                yield Event(kind, event_id, _decode(text))
            kind, data = "message", []
            continue
        if line.startswith(":"):
            if keepalive:
                yield Event("ping", None, line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
    if data:
        yield Event(kind, event_id, _decode("\n".join(data)))


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
