"""The comparison of a benchmark's configurations, as pure functions over per-job results.

Per configuration and summary metric: n, mean, sample std and a 95% t interval
over seeds; a ranking on one metric; paired tests against the baseline
configuration, pairing runs by seed (scipy `ttest_rel`, and `wilcoxon` from
six pairs up); Kendall's τ-b between each sharpness measure and the
generalization gap over all runs; and the test metrics reached at an equal
budget of gradient evaluations and of training seconds, because a SAM step
costs two gradients (DeepOBS / AlgoPerf compare at equal cost, not epochs).
Only succeeded runs enter the statistics. No database here: the service
reads rows and passes `Run`s in, so every number is testable on arrays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from sam_core.spec.catalog import MEASURES

CONFIDENCE = 0.95
WILCOXON_MIN_PAIRS = 6
GAPS = ("gen_gap_acc", "gen_gap_loss")
# Catalog measures that are not a sharpness of the minimum.
NOT_SHARPNESS = ("prediction_error", "loss_landscape_1d", "loss_landscape_2d", "hessian_density")
BUDGET_METRICS = ("test_acc", "test_loss")


@dataclass(frozen=True)
class Run:
    """One job of a benchmark: its configuration, seed, outcome and (optional) time series."""

    job_id: str
    label: str
    seed: int
    status: str
    summary: dict[str, float] | None
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status == "succeeded" and self.summary is not None


def describe(values: Sequence[float | None]) -> dict[str, Any]:
    """n, mean, sample std (ddof=1) and the 95% t interval of the mean; None values skipped."""
    data = np.asarray([v for v in values if _finite(v)], dtype=float)
    n = len(data)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    mean = float(data.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci_low": None, "ci_high": None}
    std = float(data.std(ddof=1))
    low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=std / math.sqrt(n))
    if std == 0.0:
        low = high = mean
    return {"n": n, "mean": mean, "std": std, "ci_low": float(low), "ci_high": float(high)}


def configuration_stats(runs: Iterable[Run]) -> dict[str, dict[str, Any]]:
    """Per label: runs by status, and `describe` of every summary metric over its seeds."""
    by_label = _by_label(runs)
    out: dict[str, dict[str, Any]] = {}
    for label, group in by_label.items():
        done = [r for r in group if r.done]
        names = sorted({k for r in done for k in r.summary or {}})
        out[label] = {
            "runs": len(group),
            "succeeded": len(done),
            "metrics": {m: describe([_metric(r, m) for r in done]) for m in names},
        }
    return out


def rank(
    per_config: dict[str, dict[str, Any]], metric: str, order: str = "desc"
) -> list[dict[str, Any]]:
    """Configurations ordered by the mean of `metric`; those without it come last, unranked."""
    scored = [(label, s["metrics"].get(metric, {}).get("mean")) for label, s in per_config.items()]
    have = sorted(
        ((lab, m) for lab, m in scored if m is not None),
        key=lambda item: item[1],
        reverse=order == "desc",
    )
    ranked = [{"rank": i + 1, "label": lab, "mean": m} for i, (lab, m) in enumerate(have)]
    return ranked + [{"rank": None, "label": lab, "mean": None} for lab, m in scored if m is None]


def paired_tests(runs: Iterable[Run], baseline: str, metrics: Sequence[str]) -> dict[str, Any]:
    """Per configuration and metric: the test of (config − baseline) over seeds both ran."""
    by_label = _by_label(r for r in runs if r.done)
    base = {r.seed: r for r in by_label.get(baseline, [])}
    out: dict[str, Any] = {}
    for label, group in by_label.items():
        if label == baseline:
            continue
        mine = {r.seed: r for r in group}
        seeds = sorted(set(mine) & set(base))
        out[label] = {m: _paired(mine, base, seeds, m) for m in metrics}
    return out


def _paired(mine: dict[int, Run], base: dict[int, Run], seeds: list[int], metric: str) -> Any:
    pairs = [(_metric(mine[s], metric), _metric(base[s], metric)) for s in seeds]
    pairs = [(a, b) for a, b in pairs if _finite(a) and _finite(b)]
    result: dict[str, Any] = {"n_pairs": len(pairs), "mean_diff": None}
    result.update(t=None, p_value=None, wilcoxon_statistic=None, wilcoxon_p_value=None)
    if not pairs:
        return result
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    result["mean_diff"] = float((a - b).mean())
    if len(pairs) >= 2:
        test = stats.ttest_rel(a, b)
        result.update(t=_num(test.statistic), p_value=_num(test.pvalue))
    if len(pairs) >= WILCOXON_MIN_PAIRS and np.any(a != b):
        test = stats.wilcoxon(a, b)
        result.update(wilcoxon_statistic=_num(test.statistic), wilcoxon_p_value=_num(test.pvalue))
    return result


def sharpness_names(runs: Iterable[Run]) -> list[str]:
    """Summary keys that are sharpness measures: a catalog measure's name, or `name_2`, …
    when a spec asks for one measure twice (`name_stderr` and other extras are not)."""
    measures = [m for m in MEASURES if m not in NOT_SHARPNESS]
    keys = {k for r in runs if r.done for k in r.summary or {}}
    return sorted(k for k in keys if any(re.fullmatch(rf"{m}(_\d+)?", k) for m in measures))


def flatness_correlations(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Kendall τ-b between each sharpness measure and each generalization gap, over all runs."""
    done = [r for r in runs if r.done]
    out = []
    for measure in sharpness_names(done):
        for gap in GAPS:
            pairs = [(_metric(r, measure), _metric(r, gap)) for r in done]
            pairs = [(x, y) for x, y in pairs if _finite(x) and _finite(y)]
            entry: dict[str, Any] = {"measure": measure, "gap": gap, "n": len(pairs)}
            entry.update(tau=None, p_value=None)
            if len(pairs) >= 2:
                test = stats.kendalltau([p[0] for p in pairs], [p[1] for p in pairs])
                entry.update(tau=_num(test.statistic), p_value=_num(test.pvalue))
            if pairs:
                out.append(entry)
    return out


def budget_curve(run: Run, budget: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, budget spent by each step) of a run, from 0 to its last step.

    Gradient evaluations come from the `grad_evals` points the loop logs, with
    the summary's total at the last step. The loop reports training seconds
    only in total (measures off the clock), so seconds grow linearly in steps.
    """
    summary = run.summary or {}
    last_step, total = float(summary.get("steps", 0.0)), float(summary.get(budget, 0.0))
    points = run.series.get(budget, []) if budget == "grad_evals" else []
    steps = [0.0] + [float(s) for s, _ in points if s < last_step] + [last_step]
    spent = [0.0] + [float(v) for s, v in points if s < last_step] + [total]
    return np.asarray(steps), np.asarray(spent)


def value_at_budget(run: Run, metric: str, budget: str, limit: float) -> float | None:
    """The last evaluation of `metric` taken when the run had spent at most `limit`."""
    steps, spent = budget_curve(run, budget)
    reached = None
    for step, value in sorted(run.series.get(metric, [])):
        if np.interp(step, steps, spent) <= limit * (1 + 1e-9) and _finite(value):
            reached = float(value)
    return reached


def equal_budget(runs: Sequence[Run], budget: str) -> dict[str, Any]:
    """Each configuration's test metrics at B = the smallest total `budget` of any run."""
    done = [r for r in runs if r.done and _finite(_metric(r, budget))]
    if not done:
        return {"budget": None, "metrics": {}}
    limit = min(float(_metric(r, budget)) for r in done)
    by_label = _by_label(done)
    metrics = {}
    for metric in BUDGET_METRICS:
        if not any(r.series.get(metric) for r in done):
            continue
        metrics[metric] = {
            label: describe([value_at_budget(r, metric, budget, limit) for r in group])
            for label, group in by_label.items()
        }
    return {"budget": limit, "metrics": metrics}


def compare(
    runs: Sequence[Run], *, baseline: str | None, metric: str, order: str = "desc"
) -> dict[str, Any]:
    """The whole comparison of `GET /v1/benchmarks/{id}`."""
    per_config = configuration_stats(runs)
    names = sorted({m for s in per_config.values() for m in s["metrics"]})
    return {
        "metric": metric,
        "order": order,
        "baseline": baseline,
        "configurations": per_config,
        "ranking": rank(per_config, metric, order),
        "paired_tests": paired_tests(runs, baseline, names) if baseline else {},
        "flatness_vs_generalization": flatness_correlations(runs),
        "equal_grad_evals": equal_budget(runs, "grad_evals"),
        "equal_train_seconds": equal_budget(runs, "train_seconds"),
    }


def _by_label(runs: Iterable[Run]) -> dict[str, list[Run]]:
    """Runs by label, labels in the order first seen (the grid's), runs by seed."""
    out: dict[str, list[Run]] = {}
    for run in runs:
        out.setdefault(run.label, []).append(run)
    return {label: sorted(group, key=lambda r: r.seed) for label, group in out.items()}


def _metric(run: Run, name: str) -> Any:
    return (run.summary or {}).get(name)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
