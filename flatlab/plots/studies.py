"""A study's plots: the optimization history, Optuna's parameter importances, and the
tuning curves of a tuned comparison (best so far against the budget spent)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from matplotlib.figure import Figure

from flatlab.optuna_space import distribution, encode
from flatlab.plots.figure import MissingData, new_figure, tag


def _complete(trials: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        t
        for t in trials
        if t.get("state") == "complete"
        and isinstance(t.get("value"), int | float)
        and math.isfinite(t["value"])
    ]


def optimization_history(
    trials: Sequence[Mapping[str, Any]], metric: str, direction: str
) -> Figure:
    """Each complete trial's objective by trial number, and the best so far as a step line
    (Optuna's optimization history). `trials`: `trials` of `GET /v1/studies/{id}`;
    pruned trials are marked at the bottom. Raises MissingData before any trial completed."""
    done = _complete(trials)
    if not done:
        raise MissingData("no trial has completed yet")
    fig, (ax,) = new_figure(width=6.4, height=4.0)
    xs = [t["number"] for t in done]
    ys = [t["value"] for t in done]
    tag(ax.scatter(xs, ys, color="tab:blue", label="trial", zorder=3), "points", "trials")
    best, line = None, []
    for x, y in zip(xs, ys, strict=True):
        better = best is None or (y > best if direction == "maximize" else y < best)
        best = y if better else best
        line.append((x, best))
    (step,) = ax.step(*zip(*line, strict=True), where="post", color="tab:red", label="best so far")
    tag(step, "line", "best")
    pruned = [t["number"] for t in trials if t.get("state") == "pruned"]
    if pruned:
        low = min(ys)
        ax.scatter(pruned, [low] * len(pruned), marker="x", color="tab:gray", label="pruned")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.legend(fontsize="small")
    return fig


def parameter_importance(
    trials: Sequence[Mapping[str, Any]],
    search_space: Mapping[str, Mapping[str, Any]],
    direction: str,
) -> Figure:
    """Optuna's hyperparameter importances (fANOVA, Hutter et al. 2014) of the complete
    trials, one bar per searched path. Needs two complete trials and a dimension that
    varies; raises MissingData otherwise."""
    done = _complete(trials)
    if len(done) < 2:
        raise MissingData("parameter importance needs at least two complete trials")
    dists = {path: distribution(dim) for path, dim in search_space.items()}
    study = optuna.create_study(direction="maximize" if direction == "maximize" else "minimize")
    for t in done:
        study.add_trial(
            optuna.trial.create_trial(
                params=encode(search_space, t["params"]), distributions=dists, value=t["value"]
            )
        )
    try:
        importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:
        raise MissingData(f"Optuna cannot rank the parameters yet: {exc}") from None
    names = list(importances)[::-1]
    fig, (ax,) = new_figure(width=6.4, height=max(2.5, 0.6 * len(names) + 1.5))
    for i, name in enumerate(names):
        (bar,) = ax.barh(i, importances[name], color="tab:blue")
        tag(bar, "bar", name)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("importance (fANOVA)")
    return fig


def tuning_curves(optimizers: Sequence[Mapping[str, Any]], metric: str, *, x: str) -> Figure:
    """Best objective so far against the budget spent, one line per optimizer.

    `optimizers`: `tuning.optimizers` of a tuned benchmark's report (each with `label`
    and `curve`); `x`: `trials` or `grad_evals`. Raises MissingData with no point yet."""
    if not any(o.get("curve") for o in optimizers):
        raise MissingData("no trial has finished yet")
    fig, (ax,) = new_figure(width=6.4, height=4.0)
    for item in optimizers:
        points = [
            (p[x], p["best_value"]) for p in item.get("curve") or [] if p["best_value"] is not None
        ]
        if points:
            (line,) = ax.step(
                *zip(*points, strict=True), where="post", marker="o", label=item["label"]
            )
            tag(line, "line", str(item["label"]))
    ax.set_xlabel("trials" if x == "trials" else "gradient evaluations")
    ax.set_ylabel(f"best {metric} so far (validation)")
    ax.legend(fontsize="small")
    return fig
