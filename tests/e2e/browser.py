"""Shared by the browser tests and `scripts/screenshots.py`: an embedded stack started by
`flatlab up --detach` in a folder, and headless Chromium driven by Playwright.

Chromium is the Debian package (`/usr/bin/chromium`, or `FLATLAB_CHROMIUM`), not
Playwright's own download, and runs with networking extras off, so nothing
leaves the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = os.environ.get("FLATLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass
class Stack:
    url: str
    key: str
    folder: Path

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=60
        )


def flatlab(*args: str, cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    """Run `flatlab ARGS` in `cwd`; its stdout, or RuntimeError with its output."""
    done = subprocess.run(
        [sys.executable, "-m", "flatlab.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"flatlab {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded_stack(folder: Path) -> Iterator[Stack]:
    """The embedded stack (SQLite, filesystem broker, API and one worker) in `folder`,
    with auth on and one key of team `ui`; stopped with `flatlab down` on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLATLAB_")}
    env.update(COLUMNS="200", PYTHONUNBUFFERED="1", FLATLAB_AUTH_REQUIRED="true")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        flatlab("up", "--detach", "--port", str(port), cwd=folder, env=env)
        out = flatlab("keys", "create", "--team", "ui", cwd=folder, env=env)
        key = out.strip().splitlines()[-1].strip()  # printed alone on the last line
        yield Stack(url=f"http://127.0.0.1:{port}", key=key, folder=folder)
    finally:
        flatlab("down", cwd=folder, env=env)


def wait_finished(client: httpx.Client, path: str, timeout: float = 300.0) -> dict[str, Any]:
    """Poll a job (`/v1/jobs/ID`) or a benchmark (`/v1/benchmarks/ID`) until it is done."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(path).raise_for_status().json()
        done = (
            body["status"] in TERMINAL
            if "status" in body
            else body["progress"]["fraction_done"] >= 1
        )
        if done:
            return dict(body)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} not finished after {timeout:.0f} s")
        time.sleep(0.5)


@contextmanager
def chromium(viewport: tuple[int, int] = (1360, 900)) -> Iterator[Any]:
    """A fresh Playwright browser page in headless Debian Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            yield context.new_page()
        finally:
            browser.close()
