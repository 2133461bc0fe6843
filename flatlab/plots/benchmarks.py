"""A benchmark's plots: each configuration's mean with its 95% interval, and sharpness
against the generalization gap over all runs with Kendall's τ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure
from scipy import stats

from flatlab.plots.figure import MissingData, new_figure, tag


def comparison(
    configurations: Mapping[str, Mapping[str, Any]], metric: str, *, baseline: str | None = None
) -> Figure:
    """One bar per configuration: the mean of `metric` over seeds with its 95% t interval.

    `configurations` is `comparison.configurations` of `GET /v1/benchmarks/{id}`:
    label → {"metrics": {metric: {n, mean, ci_low, ci_high}}}. A configuration
    without a value (no succeeded run) gets an empty slot labelled "no result".
    Raises MissingData when no configuration has the metric.
    """
    rows = [
        (label, (c.get("metrics") or {}).get(metric) or {}) for label, c in configurations.items()
    ]
    if not any(r.get("mean") is not None for _, r in rows):
        raise MissingData(f"no configuration has a value of {metric!r} yet (no succeeded run)")
    fig, (ax,) = new_figure(width=max(4.5, 1.1 * len(rows) + 2), height=4.0)
    for i, (label, row) in enumerate(rows):
        mean = row.get("mean")
        if mean is None:
            ax.text(i, 0, "no result", ha="center", va="bottom", fontsize="small", rotation=90)
            continue
        low, high = row.get("ci_low"), row.get("ci_high")
        err = [[mean - low], [high - mean]] if low is not None and high is not None else None
        color = "tab:gray" if label == baseline else "tab:blue"
        (bar,) = ax.bar(i, mean, yerr=err, capsize=5, color=color, alpha=0.85)
        tag(bar, "bar", label)
    ticks = [f"{label}\nn={row.get('n', 0)}" for label, row in rows]
    ax.set_xticks(range(len(rows)), ticks, rotation=20 if len(rows) > 4 else 0)
    ax.set(ylabel=metric)
    ax.set_title(f"{metric}\nmean and 95% t interval over seeds (n runs)", fontsize="medium")
    if baseline:
        ax.set_xlabel(f"configuration (grey: baseline {baseline})")
    ax.grid(axis="y", alpha=0.3)
    return fig


def sharpness_gap(
    runs: Sequence[tuple[str, float | None, float | None]], measure: str, gap: str
) -> Figure:
    """Each run's sharpness `measure` (x) against its generalization `gap` (y), coloured by
    configuration, titled with Kendall's τ-b over all runs (scipy.stats.kendalltau; Jiang et
    al. 2020, "Fantastic generalization measures and where to find them", rank correlation).

    `runs` holds (label, measure value, gap value) per succeeded run; runs lacking
    either are left out. Raises MissingData with fewer than two usable runs.
    """
    usable = [(lab, float(x), float(y)) for lab, x, y in runs if x is not None and y is not None]
    if len(usable) < 2:
        raise MissingData(
            f"{len(usable)} run(s) have both {measure!r} and {gap!r}: need two or more succeeded "
            f"runs that measured {measure}"
        )
    test = stats.kendalltau([r[1] for r in usable], [r[2] for r in usable])
    fig, (ax,) = new_figure(width=5.8, height=4.2)
    labels = list(dict.fromkeys(r[0] for r in usable))
    for label in labels:
        mine = [r for r in usable if r[0] == label]
        points = ax.scatter([r[1] for r in mine], [r[2] for r in mine], label=label, s=36)
        tag(points, "series", label)
    tau = "undefined" if test.statistic != test.statistic else f"{test.statistic:.3f}"
    ax.set(xlabel=measure, ylabel=gap)
    ax.set_title(f"Kendall τ = {tau} (p = {test.pvalue:.3g}, n = {len(usable)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
