"""What a query parameter may name, and the 422 for a name that is not there.

Every query parameter that names something — a spec path (`optimizer.rho`), a
summary metric (`final_test_acc`), a metric series (`test_acc`), a status or a
catalog name (`sam`) — is checked here against what exists, and an unknown
name is a 422 problem naming the parameter with the closest known names
(`difflib.get_close_matches`), so a typo never answers 200 with nothing.

Metric names are open: a sharpness measure records its value under its own
name and extras under `<measure>_<key>` (`hessian_trace_std`), and future
measures add names. A metric name is therefore known when a run records it by
design (`EVAL_METRICS`, the per-step series, the summary's final/best/cost
keys, a measure name, `<measure>_<anything>`) or when a stored job of the
team already has it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable
from functools import cache
from typing import Any, NoReturn

from sam_core.spec import DATASETS, EVAL_METRICS, MEASURES, MODELS, RULES, JobSpec
from sam_core.spec.catalog import VALIDATION_EVAL_METRICS
from store.errors import Unprocessable
from store.models import JOB_STATUSES

# Logged every `training.log_every_steps` steps (`rho` only by rules that have one).
STEP_METRICS = ("train_loss_step", "train_acc_step", "lr", "grad_evals", "rho")
# A finished run's summary: the last evaluation as `final_*`, the best, and its costs.
FINAL_METRICS = tuple(f"final_{m}" for m in ("train_loss", "test_loss", "train_acc", "test_acc"))
# With a validation split (`data.validation_fraction`): what studies tune on.
VALIDATION_SUMMARY = ("final_val_loss", "final_val_acc", "best_val_loss", "best_val_acc")
SUMMARY_METRICS = (
    *FINAL_METRICS,
    *VALIDATION_SUMMARY,
    "gen_gap_loss",
    "gen_gap_acc",
    "best_test_acc",
    "best_test_loss",
    "steps",
    "epochs",
    "grad_evals",
    "train_seconds",
    "measure_seconds",
    "steps_per_second",
    "num_params",
)
CATALOG_COLUMNS: dict[str, Collection[str]] = {
    "status": JOB_STATUSES,
    "optimizer": tuple(RULES),
    "model": tuple(MODELS),
    "dataset": tuple(DATASETS),
}


def unknown(where: str, value: str, known: Iterable[str], what: str, hint: str = "") -> NoReturn:
    """Raise the 422 for `where=value` naming `what` that does not exist, with the closest names.

    `hint` says what such names look like, for when none is close.
    """
    choices = sorted(set(known))
    close = difflib.get_close_matches(value, choices, n=3, cutoff=0.6)
    if close:
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
    elif len(choices) <= 12:
        hint = f"one of {', '.join(choices)}"
    msg = f"unknown {what} {value!r}" + (f"; {hint}" if hint else "")
    raise Unprocessable(
        f"{where}={value!r}: {msg}",
        errors=[{"loc": where, "msg": msg, "type": "unknown_name", "suggestions": close}],
    )


def check_choice(where: str, value: str, column: str) -> None:
    """A job status or a catalog name (`optimizer`, `model`, `dataset`) must exist."""
    if value not in CATALOG_COLUMNS[column]:
        unknown(where, value, CATALOG_COLUMNS[column], f"{column} name")


def designed_metric(name: str, summary: bool) -> bool:
    """Whether a run records `name` by design (summary keys with `summary`, else series)."""
    if name in _designed(summary) or name in MEASURES:
        return True
    return any(name.startswith(f"{m}_") for m in MEASURES)


def check_metrics(
    where: str, names: Iterable[str], recorded: Collection[str], summary: bool
) -> None:
    """Each name must be recorded by design or already stored (`recorded`); else a 422."""
    for name in names:
        if name not in recorded and not designed_metric(name, summary):
            unknown(where, name, [*_designed(summary), *MEASURES, *recorded], "metric")


def check_summary_metrics(
    named: Iterable[tuple[str, str]], recorded: Callable[[], Collection[str]]
) -> None:
    """Each `(parameter, summary metric)` must exist; `recorded()` (the team's stored
    summary keys) is asked only when a name is not one every run records."""
    stored: Collection[str] | None = None
    for where, name in named:
        if not designed_metric(name, summary=True):
            stored = recorded() if stored is None else stored
            check_metrics(where, [name], stored, summary=True)


def _designed(summary: bool) -> tuple[str, ...]:
    return SUMMARY_METRICS if summary else (*EVAL_METRICS, *VALIDATION_EVAL_METRICS, *STEP_METRICS)


def check_spec_path(where: str, parts: tuple[str, ...]) -> None:
    """A dotted path must name a field of the job spec for some optimizer, model or data set.

    List items are addressed by index (`model.hidden.0`); a free-form mapping
    accepts any key below it.
    """
    if _resolve(_spec_schema(), parts) is None:
        unknown(where, ".".join(parts), spec_paths(), "spec field")


@cache
def spec_paths() -> tuple[str, ...]:
    """Every dotted path of the job spec, over every optimizer, model and data set."""
    out: set[str] = set()

    def walk(node: dict[str, Any], prefix: str, depth: int) -> None:
        for sub in _alternatives(node):
            for key, child in sub.get("properties", {}).items():
                path = f"{prefix}.{key}" if prefix else key
                out.add(path)
                if depth < 4:
                    walk(child, path, depth + 1)

    walk(_spec_schema(), "", 0)
    return tuple(sorted(out))


@cache
def _spec_schema() -> dict[str, Any]:
    return JobSpec.model_json_schema()


def _alternatives(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a node may be: `$ref` followed, unions and `allOf` opened."""
    defs = _spec_schema().get("$defs", {})
    if "$ref" in node:
        return _alternatives(defs[node["$ref"].rsplit("/", 1)[-1]])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return [alt for sub in node[key] for alt in _alternatives(sub)]
    return [node]


def _resolve(node: dict[str, Any], parts: tuple[str, ...]) -> dict[str, Any] | None:
    if not parts:
        return node
    head, rest = parts[0], parts[1:]
    for alt in _alternatives(node):
        kind = alt.get("type")
        child: Any = None
        if head in alt.get("properties", {}):
            child = alt["properties"][head]
        elif kind == "array" and head.isdigit():
            child = alt.get("items", {})
        elif kind in (None, "object") and not {"properties", "enum", "const"} & alt.keys():
            return alt  # free-form: any key below it
        if child is not None and _resolve(child, rest) is not None:
            return child
    return None
