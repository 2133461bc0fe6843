"""What every `flatlab` command shares: consoles, exit codes, `--url/--key/--json`, errors.

Exit codes a script can rely on (docs/cli.md):

| code | meaning |
| --- | --- |
| 0 | done |
| 1 | a waited-for job or benchmark failed or was cancelled; a start command failed |
| 2 | usage: a bad option, an unreadable spec file, a request refused (400, 409, 413, 415, 422) |
| 3 | not found (404): no such job, benchmark, artifact |
| 4 | auth: no key, a revoked key (401), a read-only key writing (403) |
| 5 | the server failed (5xx) or could not be reached |
| 6 | gave up waiting (`--timeout`); the job or benchmark goes on |
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from flatlab.client import (
    BadRequest,
    Client,
    Conflict,
    ConnectionFailed,
    FlatlabError,
    Forbidden,
    JobFailed,
    NotFound,
    ServerError,
    SpecError,
    Unauthenticated,
    ValidationError,
)
from flatlab.client.errors import ApiError

# Piped output (CI logs, `| tee`) gets rich's 80 columns; tables need more.
console = Console() if sys.stdout.isatty() else Console(width=132)
err_console = Console(stderr=True)


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    AUTH = 4
    SERVER = 5
    TIMEOUT = 6


EXIT_BY_ERROR: tuple[tuple[type[BaseException], Exit], ...] = (
    (JobFailed, Exit.FAILED),
    (SpecError, Exit.USAGE),
    (ValidationError, Exit.USAGE),
    (BadRequest, Exit.USAGE),
    (Conflict, Exit.USAGE),
    (NotFound, Exit.NOT_FOUND),
    (Unauthenticated, Exit.AUTH),
    (Forbidden, Exit.AUTH),
    (ServerError, Exit.SERVER),
    (ConnectionFailed, Exit.SERVER),
    (ApiError, Exit.SERVER),
    (TimeoutError, Exit.TIMEOUT),
)

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="FLATLAB_URL",
        help="the API; default: the one `flatlab up` started, else http://127.0.0.1:8000",
        show_default=False,
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--key", envvar="FLATLAB_API_KEY", help="API key", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON (one document) instead")]

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: Exit = Exit.FAILED) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def reports_errors(command: F) -> F:
    """Turn the client's errors into one message on stderr and the documented exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (FlatlabError, TimeoutError) as exc:
            code = next(c for kind, c in EXIT_BY_ERROR if isinstance(exc, kind))
            lines = [str(exc)]
            if isinstance(exc, ApiError):
                lines += [f"  {e.loc or '(body)'}: {e.msg}" for e in exc.errors]
            fail("\n".join(lines), code)

    return run  # type: ignore[return-value]


def recorded_url() -> str | None:
    """The URL the running `flatlab up` of this home recorded, if it still runs."""
    from flatlab.cli.procs import live_pids, run_dir
    from flatlab.settings import get_settings

    folder = run_dir(get_settings())
    url_file = folder / "api.url"
    if url_file.is_file() and "api" in live_pids(folder):
        return url_file.read_text().strip() or None
    return None


def client(url: str | None, key: str | None, **kwargs: Any) -> Client:
    """A client for `--url`/`FLATLAB_URL`, else the stack `flatlab up` started here."""
    return Client(url or recorded_url(), key, **kwargs)


def print_json(data: Any) -> None:
    """One JSON document on stdout, exactly (no rich markup or wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
