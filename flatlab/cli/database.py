"""`flatlab db upgrade`, and the one-line failure every command that migrates shares.

A database that does not exist, refuses the login or cannot be reached is
reported in one line that says what to do, never as SQLAlchemy's traceback.
"""

from __future__ import annotations

import re

import typer

from flatlab.cli.common import console, fail
from flatlab.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, help="The database.")


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the configured database."""
    settings = get_settings()
    upgrade_or_fail(settings)
    console.print(f"database at the newest revision: {redact(settings.db_url)}")


def upgrade_or_fail(settings: Settings) -> None:
    """Apply the migrations; a database that cannot be used ends the command in one line."""
    from sqlalchemy.exc import DBAPIError

    import migrations

    try:
        migrations.upgrade(settings.db_url)
    except (DBAPIError, OSError) as exc:  # OSError: SQLite's folder cannot be made
        fail(unusable_database(settings.db_url, exc))


def unusable_database(url: str, exc: Exception) -> str:
    """One line: which database, the driver's reason, and what to do about it."""
    orig = getattr(exc, "orig", None) or exc
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[-1].strip()
    where = redact(url)
    missing = re.search(r'database "([^"]+)" does not exist', str(orig))
    if missing:
        name = missing.group(1)
        host = _host(url)
        return (
            f"the database {name!r} does not exist ({where}): create it with "
            f"`createdb {host}{name}`, then run `flatlab db upgrade` again"
        )
    if url.startswith("sqlite"):
        return f"cannot open the SQLite database ({where}): {reason}; check FLATLAB_HOME"
    return (
        f"cannot use the database {where}: {reason}; check FLATLAB_DATABASE_URL "
        "and that the server runs"
    )


def _host(url: str) -> str:
    found = re.search(r"@([^/:?]+)(?::(\d+))?/", url)
    if not found:
        return ""
    host, port = found.groups()
    return f"-h {host} " + (f"-p {port} " if port else "")


def redact(url: str) -> str:
    """`url` with its password replaced by ***."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
