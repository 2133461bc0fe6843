"""Job specs and benchmark bodies as the client accepts them: dicts, pydantic models, files.

A file is YAML (`.yaml`, `.yml`) or JSON (`.json`); YAML is a superset of
JSON, so both are read by one loader. A pydantic model (`sam_core.spec.JobSpec`
or your own) is sent as `model_dump(mode="json", exclude_unset=True)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flatlab.client.errors import FlatlabError

BENCHMARK_KEYS = frozenset({"axes", "seeds", "base", "preset", "baseline", "reuse"})


class SpecError(FlatlabError, ValueError):
    """A spec file that cannot be read or is not a mapping (raised before any request)."""


def load_spec(spec: Any) -> dict[str, Any]:
    """The request body of `spec`: a dict (copied), a pydantic model, or a path to a file."""
    if isinstance(spec, dict):
        return dict(spec)
    if hasattr(spec, "model_dump"):
        return dict(spec.model_dump(mode="json", exclude_unset=True))
    if isinstance(spec, str | Path):
        return read_spec_file(Path(spec))
    raise SpecError(f"a spec is a dict, a pydantic model or a file path, not {type(spec).__name__}")


def read_spec_file(path: Path) -> dict[str, Any]:
    """A YAML or JSON mapping from `path`; `SpecError` says what is wrong and where."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path} is not valid YAML{where}: {reason}") from exc
    if not isinstance(body, dict):
        raise SpecError(f"{path} must hold a mapping (a job spec or a benchmark body)")
    return body


def is_benchmark(body: dict[str, Any]) -> bool:
    """A benchmark body has a grid (`axes`, `seeds`, `base`) or names a `preset`."""
    return bool(BENCHMARK_KEYS & body.keys())
