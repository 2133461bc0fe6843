"""Start commands say why they cannot start, in one line, instead of a traceback or a
false "flatlab is up"."""

from __future__ import annotations

import http.server
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flatlab.cli import app


def flatlab(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLATLAB_")}
    return subprocess.run(
        [sys.executable, "-m", "flatlab.cli", *args],
        cwd=cwd,
        env={**base, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


class Ready(http.server.BaseHTTPRequestHandler):
    """Answers 200 to everything, as another flatlab's /readyz would."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ready"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_flatlab() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_up_on_a_port_another_server_answers_fails_and_says_so(other_flatlab, tmp_path):
    done = flatlab("up", "--detach", "--port", str(other_flatlab), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "flatlab is up" not in done.stdout
    assert f"127.0.0.1:{other_flatlab} is already in use" in done.stderr
    assert not list((tmp_path / ".flatlab").glob("run/*"))


def test_api_on_a_taken_port_fails_in_one_line(other_flatlab, tmp_path):
    done = flatlab("api", "--port", str(other_flatlab), cwd=tmp_path)
    assert done.returncode == 1
    assert "already in use" in done.stderr and "Traceback" not in done.stderr


def test_db_upgrade_of_a_missing_postgresql_database_says_what_to_do(tmp_path):
    name = f"flatlab_absent_{secrets.token_hex(4)}"
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    done = flatlab("db", "upgrade", cwd=tmp_path, FLATLAB_DATABASE_URL=url)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"the database '{name}' does not exist" in lines[0]
    assert f"createdb -h 127.0.0.1 -p 5432 {name}" in lines[0]


def test_db_upgrade_of_an_sqlite_file_that_cannot_be_made_says_so(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    done = flatlab("db", "upgrade", cwd=tmp_path, FLATLAB_HOME=str(blocker))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "cannot open the SQLite database" in done.stderr


def test_usage_errors_exit_2_before_any_request():
    runner = CliRunner()
    unreachable = ["--url", "http://127.0.0.1:9"]
    assert runner.invoke(app, ["plot", "job", "j1", "nonsense", *unreachable]).exit_code == 2
    mismatch = ["plot", "job", "j1", "curves", "--out", "a.svg", "--format", "png"]
    assert runner.invoke(app, [*mismatch, *unreachable]).exit_code == 2
    both = ["results", "--csv", "a.csv", "--parquet", "a.parquet", *unreachable]
    assert runner.invoke(app, both).exit_code == 2
    assert runner.invoke(app, ["jobs", "ls", "--limit", "many"]).exit_code == 2
    missing = runner.invoke(app, ["submit", "no-such-spec.yaml", *unreachable])
    assert missing.exit_code == 2 and "cannot read no-such-spec.yaml" in missing.stderr


def test_an_unreachable_api_exits_5_after_the_retries():
    done = CliRunner().invoke(app, ["jobs", "ls", "--url", "http://127.0.0.1:9"])
    assert done.exit_code == 5 and "ConnectError" in done.stderr


def test_every_verb_group_is_on_the_command():
    text = CliRunner().invoke(app, ["--help"]).stdout
    for verb in ("up", "down", "api", "worker", "reconcile", "submit", "results", "demo"):
        assert verb in text
    for group in ("jobs", "bench", "plot", "db", "keys"):
        assert group in text
