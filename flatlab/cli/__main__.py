"""`python -m flatlab.cli …` is the `flatlab` command."""

from flatlab.cli import app

app()
