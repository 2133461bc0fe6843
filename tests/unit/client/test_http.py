"""The client's HTTP layer against scripted answers: retries, Idempotency-Key, typed errors,
and the server-sent-events parser (a real server cannot be made to fail on cue)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from flatlab.client import (
    Client,
    ConnectionFailed,
    NotFound,
    ServerError,
    Unauthenticated,
    ValidationError,
)
from flatlab.client._http import parse_sse

JOB = {"id": "j1", "status": "queued"}


def scripted(answers: list[Callable[[httpx.Request], httpx.Response]], seen: list[httpx.Request]):
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1](request)

    http = httpx.Client(base_url="http://flatlab.test", transport=httpx.MockTransport(handler))
    return Client("http://flatlab.test", "k-123", http=http, backoff=0.0, retries=2)


def ok(body: dict) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(202, json=body)


def status(code: int, body: dict | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(code, json=body or {"status": code, "detail": "x"})


def raises(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc("scripted", request=request)

    return answer


def test_a_job_submission_is_retried_with_the_same_idempotency_key():
    seen: list[httpx.Request] = []
    client = scripted([raises(httpx.ReadTimeout), status(503), ok(JOB)], seen)
    job = client.submit_job({"model": {"name": "mlp"}})
    assert job.id == "j1"
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(seen) == 3 and len(keys) == 1
    assert seen[0].headers["Authorization"] == "Bearer k-123"


def test_each_call_gets_its_own_idempotency_key():
    seen: list[httpx.Request] = []
    client = scripted([ok(JOB)], seen)
    client.submit_job({})
    client.submit_job({})
    assert seen[0].headers["Idempotency-Key"] != seen[1].headers["Idempotency-Key"]


def test_a_benchmark_is_not_sent_twice_after_a_timeout_but_is_after_a_refused_connection():
    seen: list[httpx.Request] = []
    client = scripted([raises(httpx.ReadTimeout), ok({"id": "b1"})], seen)
    with pytest.raises(ConnectionFailed, match="ReadTimeout"):
        client.submit_benchmark({"axes": {}})
    assert len(seen) == 1
    seen.clear()
    client = scripted([raises(httpx.ConnectError), ok({"id": "b1"})], seen)
    assert client.submit_benchmark({"axes": {}}).id == "b1"
    assert len(seen) == 2


def test_retries_end_with_the_last_error():
    seen: list[httpx.Request] = []
    client = scripted([status(503)], seen)
    with pytest.raises(ServerError) as caught:
        client.job("j1")
    assert caught.value.status == 503 and len(seen) == 3  # retries=2


def test_errors_are_typed_and_carry_the_problem_and_its_fields():
    problem = {
        "type": "urn:flatlab:problem:validation_error",
        "title": "Unprocessable content",
        "status": 422,
        "detail": "optimizer.rho: must be ≥ 0",
        "errors": [{"loc": "optimizer.rho", "msg": "must be ≥ 0", "type": "greater_than_equal"}],
    }
    client = scripted([status(422, problem)], [])
    with pytest.raises(ValidationError) as caught:
        client.submit_job({})
    assert caught.value.fields == ["optimizer.rho"]
    assert caught.value.errors[0].msg == "must be ≥ 0"
    assert caught.value.problem == problem
    with pytest.raises(NotFound):
        scripted([status(404)], []).job("nope")
    with pytest.raises(Unauthenticated):
        scripted([status(401)], []).job("j1")


def test_a_non_json_error_body_still_raises_its_typed_error():
    client = scripted([lambda r: httpx.Response(404, text="<html>gone</html>")], [])
    with pytest.raises(NotFound, match="gone"):
        client.job("j1")


def test_server_sent_events_are_parsed_as_the_standard_says():
    lines = [
        ": ping",
        "event: status",
        "id: 0",
        'data: {"status": "running"}',
        "",
        "event: metric",
        "id: 7",
        'data: {"name": "train_loss",',
        'data:  "value": 1.5}',
        "",
        "data: plain text",
        "",
    ]
    events = list(parse_sse(iter(lines)))
    assert [(e.event, e.id) for e in events] == [("status", "0"), ("metric", "7"), ("message", "7")]
    assert events[0].data == {"status": "running"}
    assert events[1].data == {"name": "train_loss", "value": 1.5}
    assert events[2].data == "plain text"


def test_an_event_stream_resumes_after_a_drop_from_the_last_event_id():
    streams = [
        b'event: metric\nid: 3\ndata: {"v": 1}\n\n',
        b'event: status\nid: 3\ndata: {"status": "succeeded"}\n\n',
    ]
    seen: list[httpx.Request] = []

    class Dropping(httpx.SyncByteStream):
        def __iter__(self):
            yield streams[0]
            raise httpx.RemoteProtocolError("peer closed")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, stream=Dropping())
        return httpx.Response(200, content=streams[1])

    http = httpx.Client(base_url="http://t", transport=httpx.MockTransport(handler))
    events = list(Client("http://t", http=http, backoff=0.0).events("j1"))
    assert [e.data for e in events] == [{"v": 1}, {"status": "succeeded"}]
    assert "Last-Event-ID" not in seen[0].headers
    assert seen[1].headers["Last-Event-ID"] == "3"


def test_metric_pages_are_followed_and_a_series_split_across_them_joined():
    def point(step: int) -> dict:
        return {
            "step": step,
            "epoch": step / 10,
            "value": float(step),
            "time": "2026-01-01T00:00:00Z",
        }

    pages = {
        None: {"metrics": {"a": [point(1), point(2)]}, "next_cursor": "c1"},
        "c1": {"metrics": {"a": [point(3)], "b": [point(3)]}, "next_cursor": None},
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    http = httpx.Client(base_url="http://t", transport=httpx.MockTransport(handler))
    frame = Client("http://t", http=http).metrics("j1")
    assert list(zip(frame["name"], frame["step"], strict=True)) == [
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 3),
    ]
    assert len(seen) == 2
