"""A benchmark body and its expansion into one validated job spec per grid point.

A benchmark is a base job spec, axes (dotted spec paths, each with a list of
values) and seeds. The axis `config` lists whole configurations instead: each value
is a partial spec with a `label`, laid over the base section by section (so one
configuration may set its own step size, sampling and epochs: importance sampling
at its own theoretical step). `expand` takes the cartesian product of the axes and the
seeds and validates every point as a `JobSpec` before any job exists, so a
grid is accepted or refused whole. Torch-free: the API imports it.

An axis over a field of a block that another axis chooses (`optimizer.rho`
beside `optimizer: [sgd, sam, asam]`) is skipped for the blocks without that
field: SGD runs once, SAM and ASAM once per ρ; each point lists the axes it
skipped.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sam_core.spec import DATASETS, MODELS, RULES, JobSpec, public_loc

__all__ = ["BenchmarkBody", "BenchmarkInvalid", "Point", "count_points", "expand"]

SPEC_SECTIONS = ("model", "data", "optimizer", "training", "measure", "limits", "tags")
CONFIG_AXIS = "config"
WHOLE_BLOCKS = ("model", "data", "optimizer")
MAX_LABEL = 100
MAX_REPORTED_ERRORS = 20


class BenchmarkInvalid(ValueError):
    """The grid cannot run; `errors` lists each problem with its field path and point."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class BenchmarkBody(BaseModel):
    """What `POST /v1/benchmarks` accepts (after a preset, if named, is filled in)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=32)
    base: dict[str, Any] = Field(..., description="a job spec; axes override its fields")
    axes: dict[str, list[Any]] = Field(default_factory=dict, max_length=16)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1, max_length=1000)
    baseline: str | None = Field(None, max_length=MAX_LABEL, description="default: first label")
    reuse: bool = Field(False, description="link succeeded jobs of equal spec_hash, not re-run")
    preset: str | None = Field(None, max_length=100)

    @field_validator("seeds")
    @classmethod
    def _seeds_distinct(cls, seeds: list[int]) -> list[int]:
        for seed in seeds:
            if not 0 <= seed <= 2**31 - 1:
                raise ValueError(f"each seed must be in [0, 2^31 - 1], got {seed}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds

    @field_validator("axes")
    @classmethod
    def _axes_well_formed(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in axes.items():
            _check_axis_path(path)
            if not values:
                raise ValueError(f"axis {path!r} has no values")
            keys = [_canonical(v) for v in values]
            if len(set(keys)) != len(keys):
                raise ValueError(f"axis {path!r} repeats a value: {values}")
        return axes


@dataclass(frozen=True)
class Point:
    """One job of the grid: its configuration label, the axis values, the seed, the spec."""

    label: str
    seed: int
    values: dict[str, Any]
    spec: JobSpec = field(compare=False)
    skipped: tuple[str, ...] = ()  # axes whose field this point's block does not have


def count_points(body: BenchmarkBody) -> int:
    return math.prod(len(v) for v in body.axes.values()) * len(body.seeds)


def expand(body: BenchmarkBody, *, max_jobs: int = 1000) -> list[Point]:
    """Every point of the grid, validated; raises `BenchmarkInvalid` naming each bad point."""
    total = count_points(body)
    if total > max_jobs:
        sizes = " × ".join(f"{len(v)} {k}" for k, v in body.axes.items())
        raise BenchmarkInvalid(
            f"benchmark has {total} jobs ({sizes or '1 configuration'} × "
            f"{len(body.seeds)} seeds), more than the limit of {max_jobs} (max_benchmark_jobs)"
        )
    # Whole blocks first, so `optimizer.rho` lands inside the block the `optimizer` axis chose.
    paths = sorted(body.axes, key=lambda p: (p != CONFIG_AXIS, p.count(".")))
    labels = _axis_labels(body.axes)
    points: list[Point] = []
    errors: list[dict[str, Any]] = []
    bad_points = 0
    seen: set[str] = set()
    applied: set[str] = set()
    for combo in itertools.product(*(range(len(body.axes[p])) for p in paths)):
        values = {p: body.axes[p][i] for p, i in zip(paths, combo, strict=True)}
        for seed in body.seeds:
            try:
                spec, skipped = _point_spec_skipping(body, values, seed)
            except BenchmarkInvalid as exc:
                bad_points += 1
                label = _label(labels, paths, combo, ())
                for error in exc.errors:
                    if len(errors) < MAX_REPORTED_ERRORS:
                        errors.append({**error, "point": {"label": label, **values}})
                break  # the other seeds of this configuration fail the same way
            kept = {p: v for p, v in values.items() if p not in skipped}
            if seed == body.seeds[0]:
                if _canonical(kept) in seen:
                    break  # the same configuration as an earlier one once axes are skipped
                seen.add(_canonical(kept))
                applied.update(kept)
            label = _label(labels, paths, combo, skipped)
            points.append(Point(label, seed, kept, spec, skipped=skipped))
    if errors:
        first = errors[0]
        raise BenchmarkInvalid(
            f"{bad_points} configuration(s) of the grid are not valid job specs; first: "
            f"{first['loc']}: {first['msg']} at {first['point']}",
            errors,
        )
    _check_applied(body, applied)
    _check_labels(points, body.baseline)
    return points


def _label(
    labels: dict[str, list[str]], paths: list[str], combo: tuple[int, ...], skipped: tuple[str, ...]
) -> str:
    parts = [labels[p][i] for p, i in zip(paths, combo, strict=True) if p not in skipped]
    return "·".join(parts) or "base"


def _point_spec_skipping(
    body: BenchmarkBody, values: dict[str, Any], seed: int
) -> tuple[JobSpec, tuple[str, ...]]:
    """The point's spec, leaving out axes its own block has no field for.

    An axis `optimizer.rho` beside an axis `optimizer` over rules applies to
    the rules that have `rho` and is skipped for the others (SGD has no ρ);
    the same holds for `model.*` and `data.*` beside a `model` or `data` axis.
    Returns the spec and the axes skipped for it.
    """
    try:
        return _point_spec(body, values, seed), ()
    except BenchmarkInvalid as exc:
        skippable = {e["loc"] for e in exc.errors if _skippable(e, values)}
        if not skippable or len(skippable) < len(exc.errors):
            raise
    kept = {p: v for p, v in values.items() if p not in skippable}
    return _point_spec(body, kept, seed), tuple(sorted(skippable))


def _skippable(error: dict[str, Any], values: dict[str, Any]) -> bool:
    loc = str(error["loc"])
    block = loc.split(".", 1)[0]
    return error.get("type") == "extra_forbidden" and loc in values and block in values


def _check_applied(body: BenchmarkBody, applied: set[str]) -> None:
    """An axis skipped by every configuration is a typo or a mistake, not a grid."""
    for path in body.axes:
        if path not in applied:
            raise BenchmarkInvalid(
                f"axis {path!r} applies to no configuration: none of the blocks of the "
                f"{path.split('.', 1)[0]!r} axis has that field",
                [{"loc": f"axes.{path}", "msg": "no configuration has this field"}],
            )


def _point_spec(body: BenchmarkBody, values: dict[str, Any], seed: int) -> JobSpec:
    raw = copy.deepcopy(body.base)
    for path, value in values.items():
        if path == CONFIG_AXIS:
            overlay = {k: v for k, v in value.items() if k != "label"}
            raw = overlay_spec(raw, copy.deepcopy(overlay))
        else:
            _set_path(raw, path, copy.deepcopy(value))
    raw.setdefault("training", {})
    if not isinstance(raw["training"], dict):
        raise BenchmarkInvalid("", [{"loc": "training", "msg": "must be an object"}])
    raw["training"]["seed"] = seed
    own = raw.get("tags", [])
    if isinstance(own, list) and all(isinstance(tag, str) for tag in own):
        raw["tags"] = list(dict.fromkeys([*own, *body.tags]))
    # otherwise the job spec's own validation names `tags` (a list of strings)
    if body.name and not raw.get("name"):
        raw["name"] = body.name
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as exc:
        raise BenchmarkInvalid("", [_describe(e, values, raw) for e in exc.errors()]) from exc


def overlay_spec(into: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `into`, recursively; a block naming another rule/model/data set
    (a different `name`) replaces the block instead of merging into it."""
    out = dict(into)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            same_kind = value.get("name", old.get("name")) == old.get("name")
            out[key] = overlay_spec(old, value) if same_kind else value
        else:
            out[key] = value
    return out


def _describe(error: Any, values: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    loc = ".".join(str(p) for p in public_loc(error["loc"]))
    msg = error["msg"]
    if error["type"] == "extra_forbidden" and loc in values:
        msg = f"unknown axis path {loc!r}: the spec has no such field"
        block, _, name = loc.partition(".")
        chosen = raw.get(block)
        if block in WHOLE_BLOCKS and isinstance(chosen, dict) and "." not in name:
            msg = f"unknown axis path {loc!r}: {_lacks(block, str(chosen.get('name')), name)}"
    return {"loc": loc, "msg": msg, "type": error["type"]}


def _lacks(block: str, chosen: str, name: str) -> str:
    """Why a block has no field `name`, the closest fields it has, and how to write the grid."""
    tables: dict[str, dict[str, Any]] = {"optimizer": RULES, "model": MODELS, "data": DATASETS}
    info = tables[block].get(chosen)
    fields = sorted(info.params.model_fields) if info is not None else []
    close = difflib.get_close_matches(name, fields, n=3)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return (
        f"{block} {chosen!r} has no field {name!r}; {hint}to vary {name!r} only where it "
        f"exists, list the {block}s in an axis {block!r} beside this one (the axis is then "
        f"skipped for those without it), or give each {block} its own block in that axis"
    )


def _set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    node: Any = raw
    parts = path.split(".")
    for depth, part in enumerate(parts[:-1]):
        key: Any = int(part) if isinstance(node, list) and part.isdigit() else part
        try:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        except (IndexError, TypeError, KeyError):
            node = None
        if not isinstance(node, dict | list):
            where = ".".join(parts[: depth + 1])
            raise BenchmarkInvalid(
                "", [{"loc": path, "msg": f"unknown axis path {path!r}: {where!r} is a value"}]
            )
    last: Any = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise BenchmarkInvalid("", [{"loc": path, "msg": f"unknown axis path {path!r}"}])
        last = int(last)
    node[last] = value


def _check_axis_path(path: str) -> None:
    if path == CONFIG_AXIS:
        return
    parts = path.split(".")
    if any(not p for p in parts):
        raise ValueError(f"axis {path!r} is not a dotted spec path such as 'optimizer.rho'")
    if parts[0] not in SPEC_SECTIONS:
        raise ValueError(
            f"unknown axis path {path!r}: it must start with one of {', '.join(SPEC_SECTIONS)}"
        )
    if path == "training.seed":
        raise ValueError("'training.seed' is not an axis: list the seeds in 'seeds'")


def _axis_labels(axes: dict[str, list[Any]]) -> dict[str, list[str]]:
    """Readable, distinct names of each axis value: `sam`, `rho=0.1`, `mlp(hidden=[64])`."""
    tails = [p.rsplit(".", 1)[-1] for p in axes]
    out: dict[str, list[str]] = {}
    for path, values in axes.items():
        if path == CONFIG_AXIS:
            out[path] = _config_labels(values)
        elif path in WHOLE_BLOCKS and all(isinstance(v, dict) for v in values):
            out[path] = _block_labels(path, values)
        else:
            short = path.rsplit(".", 1)[-1]
            name = short if tails.count(short) == 1 else path
            out[path] = [f"{name}={_render(v)}" for v in values]
    return out


def _config_labels(configs: list[Any]) -> list[str]:
    labels = []
    for i, config in enumerate(configs):
        label = config.get("label") if isinstance(config, dict) else None
        if not isinstance(label, str) or not label:
            raise BenchmarkInvalid(
                f"axis 'config' value {i} needs a 'label' (a partial spec with a name)",
                [{"loc": f"axes.config.{i}", "msg": "each configuration needs a label"}],
            )
        labels.append(label)
    if len(set(labels)) != len(labels):
        raise BenchmarkInvalid(
            f"axis 'config' has two configurations with the same label: {labels}",
            [{"loc": "axes.config", "msg": f"labels repeat: {labels}"}],
        )
    return labels


def _block_labels(path: str, blocks: list[dict[str, Any]]) -> list[str]:
    names = [str(b.get("label") or b.get("name", "?")) for b in blocks]
    labels = list(names)
    for i, block in enumerate(blocks):
        same = [j for j, other in enumerate(names) if other == names[i]]
        if len(same) > 1 and not block.get("label"):
            differing = _differing_keys([blocks[j] for j in same])
            inner = ",".join(f"{k}={_render(_get(block, k))}" for k in differing)
            labels[i] = f"{names[i]}({inner})"
    if len(set(labels)) != len(labels):
        raise BenchmarkInvalid(
            f"axis {path!r} has two blocks with the same label: {labels}",
            [{"loc": f"axes.{path}", "msg": f"labels repeat: {labels}"}],
        )
    return labels


def _differing_keys(blocks: list[dict[str, Any]]) -> list[str]:
    flat = [_flatten(b) for b in blocks]
    keys = sorted({k for f in flat for k in f} - {"name", "label"})
    return [k for k in keys if len({_canonical(f.get(k)) for f in flat}) > 1]


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _get(block: dict[str, Any], dotted: str) -> Any:
    node: Any = block
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "name" in value:
        return str(value.get("label") or value["name"])
    return json.dumps(value, separators=(",", ":"))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _check_labels(points: list[Point], baseline: str | None) -> None:
    labels = list(dict.fromkeys(p.label for p in points))
    for label in labels:
        if len(label) > MAX_LABEL:
            raise BenchmarkInvalid(
                f"configuration label {label[:40]!r}… has {len(label)} characters, more than "
                f"{MAX_LABEL}: give the optimizer blocks short labels"
            )
    if baseline is not None and baseline not in labels:
        raise BenchmarkInvalid(
            f"baseline {baseline!r} is not one of the configurations: {', '.join(labels)}",
            [{"loc": "baseline", "msg": f"not one of {labels}"}],
        )
