"""The `flatlab` command on the embedded stack it starts itself (SQLite, a real worker):
the day's verbs with typer's runner and as subprocesses, their exit codes and --json."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from flatlab.cli import app

pytestmark = pytest.mark.slow

JOB = {
    "name": "cli-digits",
    "tags": ["cli"],
    "model": {"name": "mlp", "hidden": [16]},
    "data": {"name": "digits", "batch_size": 256},
    "optimizer": {"name": "sam", "rho": 0.05, "base": {"name": "sgd", "lr": 0.1}},
    "training": {"epochs": 1, "seed": 0, "device": "cpu", "log_every_steps": 1},
}
GRID = {
    "name": "cli-grid",
    "base": JOB,
    "axes": {"optimizer": [{"name": "sgd", "label": "SGD"}, {"name": "sam", "label": "SAM"}]},
    "seeds": [0],
    "baseline": "SGD",
}


class Stack:
    def __init__(self, home: Path, env: dict[str, str], url: str) -> None:
        self.home, self.env, self.url = home, env, url

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`flatlab ARGS` as a subprocess in the stack's folder (no --url: `up` recorded it)."""
        return subprocess.run(
            [sys.executable, "-m", "flatlab.cli", *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def invoke(self, *args: str) -> object:
        """`flatlab ARGS` in this process with typer's runner, against the stack's URL."""
        return CliRunner().invoke(app, [*args, "--url", self.url], catch_exceptions=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("cli-stack")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATLAB_")}
    env.update(COLUMNS="200", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    port = _free_port()
    stack = Stack(home, env, f"http://127.0.0.1:{port}")
    (home / "job.yaml").write_text(yaml.safe_dump(JOB))
    (home / "grid.yaml").write_text(yaml.safe_dump(GRID))
    up = stack.run("up", "--detach", "--port", str(port))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert (home / ".flatlab" / "run" / "api.url").read_text() == stack.url
        yield stack
    finally:
        stack.run("down")


def test_submit_wait_json_then_read_it_back_every_way(stack: Stack):
    done = stack.run("submit", "job.yaml", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "succeeded" and job["name"] == "cli-digits"

    listed = json.loads(stack.run("jobs", "ls", "--tag", "cli", "--json").stdout)
    assert job["id"] in [j["id"] for j in listed]
    shown = json.loads(stack.run("jobs", "show", job["id"], "--json").stdout)
    assert shown["summary"] == job["summary"]

    rest = httpx.get(f"{stack.url}/v1/jobs/{job['id']}/metrics").json()["metrics"]
    points = json.loads(stack.run("jobs", "metrics", job["id"], "--json").stdout)
    by_name: dict[str, list[tuple[int, float | None]]] = {}
    for p in points:
        by_name.setdefault(p["name"], []).append((p["step"], p["value"]))
    assert by_name == {n: [(p["step"], p["value"]) for p in s] for n, s in rest.items()}

    logs = stack.run("jobs", "logs", job["id"], "--json")
    events = [json.loads(line) for line in logs.stdout.splitlines()]
    metric_events = [e for e in events if e["event"] == "metric"]
    assert len(metric_events) == sum(len(s) for s in rest.values())
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses[-1] == "succeeded"  # and the stream ended: the command returned

    table = stack.invoke("jobs", "show", job["id"])
    assert table.exit_code == 0 and "succeeded" in table.stdout and "final_test_acc" in table.stdout


def test_a_failed_job_under_wait_exits_1(stack: Stack, tmp_path: Path):
    slow = {**JOB, "training": {**JOB["training"], "epochs": 200}, "limits": {"timeout_s": 1}}
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(slow))
    done = stack.run("submit", str(path), "--wait", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "failed"


def test_exit_codes_a_script_can_rely_on(stack: Stack, tmp_path: Path):
    assert stack.run("jobs", "show", "no-such-job").returncode == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**JOB, "optimizer": {"name": "sam", "rho": -1}}))
    refused = stack.run("submit", str(bad))
    assert refused.returncode == 2 and "optimizer.rho" in refused.stderr
    assert stack.run("submit", str(tmp_path / "absent.yaml")).returncode == 2
    assert stack.run("jobs", "ls", "--no-such-option").returncode == 2
    unreachable = stack.run("jobs", "ls", "--url", f"http://127.0.0.1:{_free_port()}")
    assert unreachable.returncode == 5 and "ConnectError" in unreachable.stderr


def test_a_benchmark_from_grid_to_comparison(stack: Stack):
    created = stack.invoke("bench", "create", str(stack.home / "grid.yaml"))
    assert created.exit_code == 0, created.output
    benchmark_id = created.stdout.strip().splitlines()[-1]
    watched = stack.run("bench", "watch", benchmark_id, "--json")
    assert watched.returncode == 0, watched.stderr
    rest = httpx.get(f"{stack.url}/v1/benchmarks/{benchmark_id}").json()
    assert json.loads(watched.stdout)["comparison"] == rest["comparison"]

    table = stack.invoke("bench", "compare", benchmark_id)
    assert table.exit_code == 0
    winner = rest["comparison"]["ranking"][0]["label"]
    assert f"{winner} ★" in table.stdout and "paired tests against the baseline SGD" in table.stdout

    rows = json.loads(
        stack.run("results", "--filter", f"benchmark:eq:{benchmark_id}", "--json").stdout
    )
    assert sorted(r["label"] for r in rows) == ["SAM", "SGD"]


def test_results_export_csv(stack: Stack, tmp_path: Path):
    target = tmp_path / "results.csv"
    done = stack.invoke("results", "--group-by", "optimizer.name", "--csv", str(target))
    assert done.exit_code == 0, done.output
    header = target.read_text().splitlines()[0].split(",")
    assert header[:2] == ["optimizer.name", "jobs"] and "final_test_acc_mean" in header


def test_demo_uses_the_api_that_up_started(stack: Stack):
    done = stack.run("demo", "--epochs", "1", "--seeds", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"submitted to {stack.url}" in done.stdout
    assert "paired tests against the baseline SGD" in done.stdout


def test_giving_up_waiting_exits_6_and_the_job_goes_on(stack: Stack, tmp_path: Path):
    path = tmp_path / "gpu.yaml"  # the embedded stack's worker consumes only the cpu queue
    path.write_text(yaml.safe_dump({**JOB, "training": {**JOB["training"], "device": "cuda"}}))
    done = stack.run("submit", str(path), "--wait", "--timeout", "1")
    assert done.returncode == 6, done.stdout + done.stderr
    job_id = done.stderr.split("job ", 1)[1].split()[0]
    still = json.loads(stack.run("jobs", "show", job_id, "--json").stdout)
    assert still["status"] == "queued"
    cancelled = json.loads(stack.run("jobs", "cancel", job_id, "--json").stdout)
    assert cancelled["status"] == "cancelled"
