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

Intervals of a bounded metric (accuracies in [0, 1], `gen_gap_acc` in [−1, 1])
are t intervals on the logit scale of the mean, mapped back (`interval`): they
stay inside the bounds and equal the plain t interval where the mean is far
from them. Fewer than `SMALL_N` values are flagged `small_n`. Seeds trained
together as one ensemble share one clock (`ensemble_size` > 1 in their summary):
their cost metrics (`CLOCK_METRICS`) are left out of every statistic and of the
equal-training-seconds view, and counted as `shared_clock`.
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
# Below this many values a 95% t interval rests on a t quantile ≥ 2.78 and on a
# normality no one can check: the interval is given, and flagged.
SMALL_N = 5
# Cost metrics measured by a clock; a seed ensemble's members all read the ensemble's.
CLOCK_METRICS = ("train_seconds", "measure_seconds", "steps_per_second", "wall_seconds")


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


def metric_bounds(name: str) -> tuple[float, float] | None:
    """The range a metric cannot leave: accuracies [0, 1], `gen_gap_acc` [−1, 1]; else None."""
    if name == "gen_gap_acc":
        return (-1.0, 1.0)
    if re.search(r"(^|_)acc(_|$)", name):
        return (0.0, 1.0)
    return None


def interval(
    n: int, mean: float | None, std: float | None, bounds: tuple[float, float] | None = None
) -> tuple[float | None, float | None]:
    """The 95% interval of the mean of `n` values with sample std `std`.

    Unbounded: the t interval mean ± t(n−1)·std/√n. Bounded to [lo, hi]: the same
    t interval for logit(p), p = (mean − lo)/(hi − lo), with the delta-method
    standard error std/(√n·(hi − lo)·p(1 − p)), mapped back through the logistic
    function — inside (lo, hi) for every n, close to the t interval when p is far
    from 0 and 1 (clipping the t interval instead would keep a width the data
    cannot have on one side). A mean on a bound has std 0: the interval is the point.
    (None, None) for n < 2.
    """
    if n < 2 or mean is None or std is None:
        return None, None
    if std == 0.0:
        return mean, mean
    quantile = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
    if bounds is None:
        half = quantile * std / math.sqrt(n)
        return mean - half, mean + half
    lo, hi = bounds
    p = min(max((mean - lo) / (hi - lo), 0.0), 1.0)
    if p in (0.0, 1.0):
        return mean, mean
    centre = math.log(p / (1 - p))
    half = quantile * std / (math.sqrt(n) * (hi - lo) * p * (1 - p))
    return lo + (hi - lo) * _logistic(centre - half), lo + (hi - lo) * _logistic(centre + half)


def describe(
    values: Sequence[float | None], bounds: tuple[float, float] | None = None
) -> dict[str, Any]:
    """n, mean, sample std (ddof=1), the 95% `interval` of the mean (inside `bounds`
    when given) and `small_n` (n < SMALL_N); None and non-finite values skipped."""
    data = np.asarray([v for v in values if _finite(v)], dtype=float)
    n = len(data)
    mean = float(data.mean()) if n else None
    std = float(data.std(ddof=1)) if n >= 2 else None
    low, high = interval(n, mean, std, bounds)
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "ci_low": low,
        "ci_high": high,
        "small_n": n < SMALL_N,
    }


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
            "shared_clock": sum(1 for r in done if _shared_clock(r)),
            "metrics": {
                m: describe([_metric(r, m) for r in done], metric_bounds(m)) for m in names
            },
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
    """Each configuration's test metrics at B = the smallest total `budget` of any run.

    Runs without a comparable `budget` (a clock shared by a seed ensemble) are left
    out and counted in `left_out`, with their labels.
    """
    finished = [r for r in runs if r.done]
    done = [r for r in finished if _finite(_metric(r, budget))]
    out = [r for r in finished if r not in done]
    left_out = {"runs": len(out), "labels": sorted({r.label for r in out})}
    if not done:
        return {"budget": None, "metrics": {}, "left_out": left_out}
    limit = min(float(_metric(r, budget)) for r in done)
    by_label = _by_label(done)
    metrics = {}
    for metric in BUDGET_METRICS:
        if not any(r.series.get(metric) for r in done):
            continue
        metrics[metric] = {
            label: describe(
                [value_at_budget(r, metric, budget, limit) for r in group], metric_bounds(metric)
            )
            for label, group in by_label.items()
        }
    return {"budget": limit, "metrics": metrics, "left_out": left_out}


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
    """The summary value; None for a clock metric the run shared with its ensemble."""
    if name in CLOCK_METRICS and _shared_clock(run):
        return None
    return (run.summary or {}).get(name)


def _shared_clock(run: Run) -> bool:
    return float((run.summary or {}).get("ensemble_size", 1.0)) > 1.0


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
