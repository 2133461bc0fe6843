"""The documented examples are executable truth.

Every example request in README.md, docs/api.md and docs/benchmarks_guide.md
(`curl` commands, ```http blocks, bare `/v1/…` URLs in a fenced block and
inline `GET /…` spans) is extracted and sent, in document order, to an
in-process app on SQLite. Placeholders (`<id>`, `{id}`, `<name>`,
`$FLATLAB_KEY`) take the ids earlier examples of the same document created.
Examples with a Bearer key run with auth on and a real key. A doc that no
longer matches the API fails here, naming the file and line.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from store.artifacts import add_artifact
from store.db import session_scope
from store.metrics import write_metric_points
from store.models import Job
from tests.unit.api.conftest import make_settings, new_key

ROOT = Path(__file__).resolve().parents[3]
DOCS = ("README.md", "docs/api.md", "docs/benchmarks_guide.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`(GET) (/[^`\s]*)`")


@dataclass
class Example:
    doc: str
    line: int
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    form: dict[str, str] = field(default_factory=dict)
    python: str | None = None  # a `python -c` step that prepares a file

    def __str__(self) -> str:
        return f"{self.doc}:{self.line} {self.method} {self.path}"

    @property
    def authed(self) -> bool:
        return "$FLATLAB_KEY" in self.headers.get("Authorization", "")


def _commands(block: str) -> list[tuple[int, list[str]]]:
    """Shell commands of a block (quotes and `\\` may span lines), as tokens up to a pipe."""
    commands, pending, start = [], "", 0
    for n, line in enumerate(block.splitlines()):
        if not pending:
            start = n
        pending += line + "\n"
        try:
            tokens = shlex.split(pending.replace("\\\n", " "), comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if pending.rstrip().endswith("\\"):
            continue
        pending = ""
        if tokens:
            commands.append((start, tokens[: tokens.index("|")] if "|" in tokens else tokens))
    return commands


def _curl(doc: str, line: int, tokens: list[str]) -> Example:
    method, url, headers, body, form = "", "", {}, None, {}
    args = iter(tokens[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            key, value = next(args).split(":", 1)
            headers[key.strip()] = value.strip()
        elif arg == "-d":
            body = next(args)
        elif arg == "-F":
            key, value = next(args).split("=", 1)
            form[key] = value
        elif arg == "-o":
            next(args)
        elif arg.startswith("-"):
            assert set(arg[1:]) <= set("sN"), f"{doc}:{line}: curl option {arg} not understood"
        else:
            url = arg
    parts = urlsplit(url if "://" in url else f"http://{url}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    method = method or ("POST" if body is not None or form else "GET")
    return Example(doc, line, method, path, headers, body, form)


def _http(doc: str, line: int, block: str) -> Example:
    head, _, body = block.partition("\n\n")
    request_line, *header_lines = head.splitlines()
    method, path = request_line.split()
    headers = dict(h.split(": ", 1) for h in header_lines)
    return Example(doc, line, method, path, headers, body.strip() or None)


def extract(doc: str) -> list[Example]:
    text = (ROOT / doc).read_text()
    examples: list[Example] = []
    for fence in FENCE.finditer(text):
        lang, block = fence.group(1), fence.group(2)
        first = text.count("\n", 0, fence.start(2)) + 1
        if lang == "http":
            examples.append(_http(doc, first, block))
        elif lang == "bash":
            python = None
            for n, tokens in _commands(block):
                if tokens[:2] == ["python", "-c"]:
                    python = tokens[2]
                elif tokens[0] == "curl":
                    examples.append(_curl(doc, first + n, tokens))
                    examples[-1].python, python = python, None
        elif not lang:
            for n, line in enumerate(block.splitlines()):
                if line.startswith("/v1/"):
                    examples.append(Example(doc, first + n, "GET", line.strip()))
    for span in INLINE.finditer(text):
        line = text.count("\n", 0, span.start()) + 1
        examples.append(Example(doc, line, span.group(1), span.group(2)))
    return sorted(examples, key=lambda e: e.line)


class Runner:
    """Sends a document's examples in order and remembers what they created."""

    def __init__(self, client: TestClient, app: FastAPI, workdir: Path) -> None:
        self.client, self.app, self.workdir = client, app, workdir
        self.jobs: list[str] = []
        self.ids: dict[str, str] = {}
        self.key = ""

    def path(self, example: Example) -> str:
        path = example.path
        if "<id>" in path or "{id}" in path:
            kind = path.split("/")[2] if not path.startswith("/v1/datasets/uploads") else "uploads"
            if kind == "jobs":
                # cancel is shown on a queued job; the rest read the finished one
                value = self.queued() if path.endswith("/cancel") else self.jobs[0]
            else:
                value = self.ids[kind]
            path = path.replace("<id>", value).replace("{id}", value)
        return path.replace("<name>", "final.pt")

    def queued(self) -> str:
        for job_id in reversed(self.jobs):
            if self.client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued":
                return job_id
        raise AssertionError("no queued job to cancel")

    def send(self, example: Example) -> httpx.Response:
        headers = {k: v.replace("$FLATLAB_KEY", self.key) for k, v in example.headers.items()}
        files: dict[str, Any] = {}
        data: dict[str, str] = {}
        if example.python:
            exec(compile(example.python, str(example), "exec"), {})  # writes into the cwd
        for key, value in example.form.items():
            if value.startswith("@"):
                files[key] = (value[1:], (self.workdir / value[1:]).read_bytes())
            else:
                data[key] = value
        method, path = example.method, self.path(example)
        if "/events" in path:
            with self.client.stream(method, path, headers=headers) as r:
                r.read()
            return r
        return self.client.request(
            method, path, headers=headers, content=example.body, files=files or None, data=data
        )

    def remember(self, example: Example, r: httpx.Response) -> None:
        if example.method != "POST" or not r.is_success:
            return
        kind = example.path.split("?")[0].split("/")[2]
        if kind == "jobs" and example.path == "/v1/jobs":
            if r.json()["id"] not in self.jobs:
                self.jobs.append(r.json()["id"])
            if len(self.jobs) == 1:
                self.finish(self.jobs[0])
        elif kind == "datasets":
            self.ids["uploads"] = r.json()["id"]
        elif example.path in ("/v1/benchmarks", "/v1/studies"):  # not a cancel of one
            self.ids[kind] = r.json()["id"]

    def finish(self, job_id: str) -> None:
        """Play the worker: the first job of a doc runs to the end, with points and weights."""
        root = self.app.state.settings.artifacts_dir
        (root / job_id).mkdir(parents=True, exist_ok=True)
        (root / job_id / "final.pt").write_bytes(b"weights")
        with session_scope(self.app.state.session_factory) as session:
            job = session.get(Job, job_id)
            assert job is not None
            points = [
                (n, s, s / 10, v)
                for s in (100, 200)
                for n, v in (("train_loss", 0.5), ("test_acc", 0.9))
            ]
            write_metric_points(session=session, job_id=job_id, points=points)
            add_artifact(
                session=session, job_id=job_id, team_id=job.team_id, name="final.pt",
                kind="weights", path=f"{job_id}/final.pt", size_bytes=7,
            )  # fmt: skip
            job.status, job.summary = "succeeded", {"final_test_acc": 0.9, "final_test_loss": 0.3}


def expected_status(example: Example) -> int:
    path = example.path.split("?")[0]
    if example.method == "POST" and path in ("/v1/jobs", "/v1/benchmarks", "/v1/studies"):
        return 202
    if example.method == "POST" and path == "/v1/datasets":
        return 201
    return 200  # GETs, and cancel of a queued job


def run_doc(doc: str, workdir: Path) -> dict[bool, Runner]:
    """Send every example of `doc` to a fresh app (auth on for the Bearer ones)."""
    examples = extract(doc)
    assert len(examples) >= 3, f"found only {len(examples)} examples in {doc}: the extraction broke"
    app = create_app(make_settings(workdir / "open"))
    authed = create_app(make_settings(workdir / "auth", auth_required=True))
    runners: dict[bool, Runner] = {}
    with TestClient(app) as client, TestClient(authed) as auth_client:
        runners = {False: Runner(client, app, workdir), True: Runner(auth_client, authed, workdir)}
        runners[True].key = new_key(authed, "vision")
        for example in examples:
            runner = runners[example.authed]
            r = runner.send(example)
            assert r.status_code == expected_status(example), f"{example}: {r.status_code} {r.text}"
            runner.remember(example, r)
            if example.method == "POST" and example.path in ("/v1/jobs", "/v1/datasets"):
                assert r.headers["location"].endswith(r.json()["id"]), f"{example}: no Location"
            if example.authed:
                bare = {k: v for k, v in example.headers.items() if k != "Authorization"}
                no_key = auth_client.request(example.method, runner.path(example), headers=bare)
                assert no_key.status_code == 401, f"{example} without its key: {no_key.text}"
    return runners


@pytest.mark.parametrize("doc", DOCS)
def test_every_documented_request_answers_as_documented(
    doc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # `python -c` examples write their files here
    run_doc(doc, tmp_path)


def test_api_md_outcomes_and_error_examples(tmp_path: Path) -> None:
    """What docs/api.md says the examples answer beyond their status."""
    found = extract("docs/api.md")
    examples = {(e.method, e.path): e for e in found}
    submits = [e for e in found if (e.method, e.path) == ("POST", "/v1/jobs")]
    submit = next(e for e in submits if "Idempotency-Key" not in e.headers)  # a full spec
    idempotent = next(e for e in submits if "Idempotency-Key" in e.headers)
    app = create_app(make_settings(tmp_path))
    with TestClient(app) as client:
        runner = Runner(client, app, tmp_path)
        for example in (submit, idempotent):
            runner.remember(example, runner.send(example))
        finished, queued = runner.jobs
        assert (
            client.get(f"/v1/jobs?{examples_query(examples)}").json()["items"][0]["id"] == finished
        )

        replay = runner.send(idempotent)  # same key, same body: the same job again
        assert (replay.status_code, replay.json()["id"]) == (202, queued)
        assert replay.headers["Idempotent-Replayed"] == "true"
        other = json.loads(idempotent.body or "{}") | {"optimizer": {"name": "sam"}}
        reused = client.post("/v1/jobs", json=other, headers=idempotent.headers)
        assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")

        cancel = examples[("POST", "/v1/jobs/<id>/cancel")]
        cancelled = runner.send(cancel)  # a queued job: at once
        assert (cancelled.json()["status"], cancelled.json()["failure_reason"]) == (
            "cancelled", "cancelled"
        )  # fmt: skip
        again = client.post(cancel.path.replace("<id>", finished))  # a finished job
        assert (again.status_code, again.json()["code"]) == (409, "conflict")

        documented = _problem_example()
        bad = json.loads(submit.body or "{}")
        bad["optimizer"]["rho"] = -0.05
        problem = client.post(documented["instance"], json=bad)
        assert problem.headers["content-type"] == "application/problem+json"
        assert _subset(documented, problem.json()), problem.json()


def examples_query(examples: dict[tuple[str, str], Example]) -> str:
    return next(p for m, p in examples if m == "GET" and p.startswith("/v1/jobs?")).split("?")[1]


def _problem_example() -> dict[str, Any]:
    text = (ROOT / "docs/api.md").read_text()
    blocks = [m.group(2) for m in FENCE.finditer(text) if m.group(1) == "json"]
    found = [json.loads(b) for b in blocks if "urn:flatlab:problem:" in b]
    assert len(found) == 1, "docs/api.md should show one problem JSON example"
    return found[0]


def _subset(documented: Any, actual: Any) -> bool:
    if isinstance(documented, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in documented.items()
        )
    if isinstance(documented, list):
        return len(documented) == len(actual) and all(map(_subset, documented, actual))
    return bool(documented == actual)


def test_benchmarks_guide_python_example_reads_parquet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "docs/benchmarks_guide.md").read_text()
    [code] = [m.group(2) for m in FENCE.finditer(text) if m.group(1) == "python"]
    app = create_app(make_settings(tmp_path, auth_required=True))
    with TestClient(app) as client:
        key = new_key(app, "vision")
        body = {"model": {"name": "mlp"}, "data": {"name": "digits"}, "optimizer": {"name": "sgd"}}
        auth = {"Authorization": f"Bearer {key}"}
        assert client.post("/v1/jobs", json=body, headers=auth).status_code == 202
        monkeypatch.setattr(httpx, "get", client.get)
        scope: dict[str, Any] = {"url": str(client.base_url), "key": key}
        exec(compile(code, "docs/benchmarks_guide.md", "exec"), scope)
    assert scope["r"].status_code == 200, scope["r"].text
    rows = scope["table"].to_pylist()
    assert [(row["optimizer.name"], row["jobs"]) for row in rows] == [("sgd", 1)]


def test_extraction_finds_the_examples_it_must() -> None:
    found = {(e.doc, e.method, e.path) for doc in DOCS for e in extract(doc)}
    assert ("README.md", "POST", "/v1/jobs") in found
    assert ("docs/api.md", "GET", "/v1/jobs/<id>/artifacts/<name>") in found
    assert ("docs/api.md", "POST", "/v1/datasets") in found
    assert ("docs/benchmarks_guide.md", "POST", "/v1/benchmarks") in found
    assert sum(e.authed for doc in DOCS for e in extract(doc)) >= 1
