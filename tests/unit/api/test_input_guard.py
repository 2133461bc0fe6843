"""Odd input is a clear 4xx, never a 500: text no database stores, sizes, nesting, media types.

Each example here answered 500, 200 or 202 (stored as sent) before the input guard.
The parameter walks are generated from the app's own OpenAPI document, so a route
added later is covered without a change here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.input_guard import nesting_error, text_problem
from tests.unit.api.conftest import make_settings, spec
from tests.unit.api.test_datasets import npz_bytes, upload

NUL, SURROGATE = "a\x00b", "\\ud800"  # the surrogate as a JSON escape: no encoder sends it
ID = "0" * 32


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def _locs(response: Any) -> list[str]:
    return [e["loc"] for e in _problem(response, 422)["errors"]]


def _filled(path: str) -> str:
    # every `{…_id}` (jobs, benchmarks, data sets, studies, and whatever comes next)
    with_ids = re.sub(r"\{[a-z_]+_id\}", ID, path)
    return with_ids.replace("{name}", "checkpoint.pt").replace("{kind}", "curves")


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
    ]


def test_text_problem_names_nul_and_lone_surrogates_only() -> None:
    assert text_problem("ρ = 0.05 😀") is None
    assert "NUL" in (text_problem("x\x00") or "") and "position 1" in (text_problem("x\x00") or "")
    assert "surrogate (\\udc00)" in (text_problem("\udc00") or "")


def test_a_nul_in_any_path_parameter_is_422_naming_it(client: TestClient, app: FastAPI) -> None:
    checked = 0
    for method, path, op in _operations(app):
        for param in (p for p in op.get("parameters", []) if p["in"] == "path"):
            placeholder = {"name": "checkpoint.pt", "kind": "curves"}.get(param["name"], ID)
            url = _filled(path).replace(placeholder, "a%00b", 1)
            response = client.request(method, url)
            assert _locs(response) == [param["name"]], (method, url)
            checked += 1
    assert checked >= 8  # job, cancel, metrics, events, artifacts (2), benchmark, upload


def test_a_nul_in_any_string_query_parameter_is_422_naming_it(
    client: TestClient, app: FastAPI
) -> None:
    checked = 0
    for method, path, op in _operations(app):
        for param in (p for p in op.get("parameters", []) if p["in"] == "query"):
            response = client.request(method, _filled(path), params={param["name"]: NUL})
            assert param["name"] in _locs(response), (method, path, param["name"])
            checked += 1
    assert checked >= 10  # the job filters and cursor, results' filter and group_by, …
    r = client.get("/v1/jobs", params={"cur\x00sor": "x"})
    assert "the parameter name contains a NUL" in _problem(r, 422)["detail"]


def test_a_nul_in_a_header_is_422_naming_it(client: TestClient) -> None:
    r = client.post("/v1/jobs", json=spec(), headers={"Idempotency-Key": NUL})
    assert _locs(r) == ["idempotency-key"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (spec(name=NUL), "name"),
        (spec(tags=["ok", NUL]), "tags.1"),
        (spec(data={"name": "npz", "path": f"{NUL}.npz"}), "data.path"),
        ({**spec(), NUL: 1}, NUL),
    ],
)
def test_a_nul_anywhere_in_a_job_body_is_422_at_its_path(
    client: TestClient, body: dict[str, Any], loc: str
) -> None:
    assert _locs(client.post("/v1/jobs", json=body)) == [loc]


def test_a_lone_surrogate_in_a_body_is_422_at_its_path(client: TestClient) -> None:
    raw = json.dumps(spec(name="x")).replace('"x"', f'"{SURROGATE}"')
    r = client.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert _locs(r) == ["name"] and "lone UTF-16 surrogate (\\ud800)" in r.json()["detail"]
    paired = json.dumps(spec(name="x")).replace('"x"', '"\\ud83d\\ude00"')  # 😀: a valid pair
    r = client.post("/v1/jobs", content=paired, headers={"Content-Type": "application/json"})
    assert r.status_code == 202 and r.json()["name"] == "😀"


def test_a_nul_in_a_benchmark_name_or_its_base_is_422(client: TestClient) -> None:
    base = spec()
    assert _locs(client.post("/v1/benchmarks", json={"name": NUL, "base": base})) == ["name"]
    nested = {"base": {**base, "data": {"name": "npz", "path": NUL}}}
    assert _locs(client.post("/v1/benchmarks", json=nested)) == ["base.data.path"]


def test_base_tags_holding_a_list_is_422_at_tags(client: TestClient) -> None:
    r = client.post("/v1/benchmarks", json={"base": spec(tags=[["a"]]), "seeds": [0]})
    assert _locs(r) == ["tags.0"]  # was a TypeError (500) merging the tags


def test_nesting_past_the_limit_is_422_naming_where(client: TestClient) -> None:
    deep: Any = {}
    for _ in range(600):
        deep = {"a": deep}
    r = client.post("/v1/benchmarks", json={"base": {**spec(), "x": deep}})
    (error,) = _problem(r, 422)["errors"]
    assert error["loc"] == "base.x" + ".a" * 30
    assert "nested 33 levels deep; at most 32 (FLATLAB_MAX_JSON_DEPTH)" in error["msg"]
    very = "[" * 200_000 + "]" * 200_000  # would exhaust a recursive parser's stack
    r = client.post("/v1/jobs", content=very, headers={"Content-Type": "application/json"})
    assert _locs(r) == ["0" + ".0" * 31]


def test_nesting_error_counts_arrays_and_objects_and_skips_strings() -> None:
    assert nesting_error(b'{"a": [1, {"b": "[[[[{{{{"}]}', 3) is None
    assert nesting_error(b'{"a": [1, {"b": [[]]}]}', 3) == ("a.1.b", 4)
    assert nesting_error(b"[0, 1, [2, [3]]]", 2) == ("2.1", 3)
    assert nesting_error(b'{"k\\"ey": {"x": {}}}', 2) == ('k"ey.x', 3)
    assert nesting_error(b'["unterminated [[[[', 2) is None  # the parser reports it


def test_a_body_past_the_limit_is_413_declared_or_streamed(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, max_json_bytes=10_000))
    big = json.dumps(spec(name="x" * 20_000))

    def chunks():  # no Content-Length: the limit holds while reading
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000].encode()

    with TestClient(app) as client:
        as_json = {"Content-Type": "application/json"}
        declared = client.post("/v1/jobs", content=big, headers=as_json)
        streamed = client.post("/v1/jobs", content=chunks(), headers=as_json)
        on_a_get = client.request("GET", "/v1/jobs", content=big)
        fits = client.post("/v1/jobs", json=spec(name="x" * 100))
    for response in (declared, streamed, on_a_get):
        body = _problem(response, 413)
        assert body["limit_bytes"] == 10_000 and "FLATLAB_MAX_JSON_BYTES" in body["detail"]
    assert fits.status_code == 202


def test_a_form_body_is_415_naming_the_content_type(client: TestClient) -> None:
    # curl -d '{…}' without -H sends application/x-www-form-urlencoded
    r = client.post(
        "/v1/jobs",
        content=json.dumps(spec()),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    body = _problem(r, 415)
    assert body["errors"][0]["loc"] == "Content-Type" and "application/json" in body["detail"]
    r = client.post("/v1/benchmarks", files={"base": ("b.json", b"{}")})  # multipart
    assert _problem(r, 415)["code"] == "unsupported_media_type"
    vendor = {"Content-Type": "application/merge-patch+json; charset=utf-8"}
    assert client.post("/v1/jobs", content=json.dumps(spec()), headers=vendor).status_code == 202


def test_malformed_json_names_line_column_and_reason(client: TestClient) -> None:
    raw = '{\n  "model": {"name": "mlp",}\n}'
    r = client.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})
    (error,) = _problem(r, 422)["errors"]
    assert error["loc"] == "body"
    assert error["msg"].startswith("invalid JSON at line 2, column 27: ")
    assert "double quotes" in error["msg"]
    r = client.post("/v1/jobs", content=b"\xff{}", headers={"Content-Type": "application/json"})
    assert "not UTF-8 text" in _problem(r, 422)["detail"]


def test_upload_name_or_file_name_with_a_nul_is_422(client: TestClient) -> None:
    r = client.post("/v1/datasets", files={"file": ("a.npz", npz_bytes())}, data={"name": NUL})
    assert _locs(r) == ["name"]
    boundary = "b0undary"  # written by hand: httpx would percent-encode the NUL
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a\x00.npz"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + npz_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    r = client.post("/v1/datasets", content=body, headers=headers)
    assert _locs(r) == ["file"] and "file name contains a NUL" in r.json()["detail"]


def test_arrays_that_together_inflate_past_the_total_are_413(tmp_path: Path) -> None:
    # Each array fits the per-array limit; the four together do not.
    app = create_app(
        make_settings(tmp_path, max_upload_array_bytes=1_000_000, max_upload_total_bytes=2_000_000)
    )
    x_train = np.zeros((200_000, 1), np.float32)  # 800 kB inflated, each under 1 MB
    with TestClient(app) as client:
        r = upload(
            client,
            npz_bytes(
                compressed=True,
                x_train=x_train,
                y_train=np.zeros(200_000, np.int32),
                x_test=np.zeros((100_000, 1), np.float32),
                y_test=np.zeros(100_000, np.int32),
            ),
        )
        kept = list(Path(app.state.settings.datasets_dir).iterdir())
    body = _problem(r, 413)
    assert body["limit_bytes"] == 2_000_000 and "2400000 bytes" in body["detail"]
    assert "FLATLAB_MAX_UPLOAD_TOTAL_BYTES" in body["detail"] and kept == []


def test_uploads_still_stream_past_the_json_limit(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, max_json_bytes=1000))
    data = npz_bytes(x_train=np.zeros((400, 8), np.float32), y_train=np.zeros(400, np.int64))
    assert len(data) > 1000
    with TestClient(app) as client:
        assert upload(client, data).status_code == 201
