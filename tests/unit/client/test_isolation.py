"""The client is light: importing it loads nothing of the server, the worker or torch."""

from __future__ import annotations

import subprocess
import sys

SERVER_SIDE = ("api", "store", "worker", "sam_core", "torch", "celery", "sqlalchemy")


def _imported_roots(statement: str) -> set[str]:
    roots = "{m.split('.')[0] for m in sys.modules}"
    code = f"{statement}; import sys; print(' '.join(sorted({roots})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_importing_the_client_imports_no_server_package():
    roots = _imported_roots("import flatlab.client")
    assert "httpx" in roots and "pydantic" in roots  # the check can see imports
    assert not roots & set(SERVER_SIDE), sorted(roots & set(SERVER_SIDE))


def test_using_the_client_for_dataframes_imports_no_server_package():
    roots = _imported_roots("import flatlab.client.frames, flatlab.client.waiting")
    assert "pandas" in roots
    assert not roots & set(SERVER_SIDE), sorted(roots & set(SERVER_SIDE))


def test_the_cli_starts_without_the_server_or_torch():
    roots = _imported_roots("import flatlab.cli")
    assert "typer" in roots
    assert not roots & {"api", "worker", "sam_core", "torch", "celery"}
