"""A job's plots over training steps: learning curves, and sharpness measures with 2/η.

Input is the job's metric series by name, each a step-ordered sequence of
`(step, value)` (value None for NaN), as `GET /v1/jobs/{id}/metrics` returns them.
"""

from __future__ import annotations

import re

from matplotlib.figure import Figure

from flatlab.plots.figure import MissingData, new_figure, tag
from flatlab.plots.series import Metrics, downsample, finite
from sam_core.spec.catalog import MEASURES

MAX_POINTS = 2000
# (panel title, y label, evaluated series, per-step series drawn faint underneath)
CURVE_PANELS = (
    ("Loss", "loss", ("train_loss", "test_loss"), "train_loss_step"),
    ("Accuracy", "accuracy", ("train_acc", "test_acc"), "train_acc_step"),
)
# Measures that are not a scalar sharpness over steps (their plots are their own kinds).
NOT_OVER_STEPS = ("prediction_error", "loss_landscape_1d", "loss_landscape_2d", "hessian_density")
LAMBDA_MAX = "hessian_top_eigenvalue"


def curves(metrics: Metrics, *, title: str | None = None, max_points: int = MAX_POINTS) -> Figure:
    """Train/test loss and accuracy over steps (one panel each), per-step values faint.

    Each series is reduced to `max_points` by bucket min/max (`downsample`).
    Raises MissingData when the job has no loss or accuracy point yet.
    """
    panels = [
        (name, ylabel, [s for s in (step, *names) if finite(metrics.get(s, ()))[0]])
        for name, ylabel, names, step in CURVE_PANELS
    ]
    panels = [p for p in panels if p[2]]
    if not panels:
        raise MissingData(
            "no loss or accuracy points yet (train_loss, test_loss, train_acc, test_acc): "
            "the job has not reached its first step or evaluation"
        )
    fig, axes = new_figure(ncols=len(panels), width=5.2, height=3.8)
    for ax, (panel, ylabel, names) in zip(axes, panels, strict=True):
        for name in names:
            steps, values = finite(downsample(metrics[name], max_points))
            faint = name.endswith("_step")
            (line,) = ax.plot(
                steps,
                values,
                label=name,
                linewidth=0.8 if faint else 1.8,
                alpha=0.35 if faint else 1.0,
                marker=None if faint or len(steps) > 40 else "o",
                markersize=3,
            )
            tag(line, "series", name)
        ax.set(title=panel, xlabel="step", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def measure_names(metrics: Metrics) -> list[str]:
    """Sharpness measures among the series (λ_max first, then trace, then by name);
    a measure asked for twice appears as `name_2`, …; extras like `_stderr` are not."""
    over_steps = [m for m in MEASURES if m not in NOT_OVER_STEPS]
    found = [
        k
        for k in metrics
        if any(re.fullmatch(rf"{m}(_\d+)?", k) for m in over_steps) and finite(metrics[k])[0]
    ]
    first = {LAMBDA_MAX: 0, "hessian_trace": 1}
    return sorted(found, key=lambda k: (first.get(k, 2), k))


def measures(metrics: Metrics, *, title: str | None = None, max_points: int = MAX_POINTS) -> Figure:
    """Each sharpness measure over steps, one panel each; λ_max with the 2/η line.

    For gradient descent at step size η, λ_max rises to and hovers at 2/η, the
    edge of stability (Cohen et al. 2021, "Gradient descent on neural networks
    typically occurs at the edge of stability"); 2/η is drawn from the logged
    `lr` series, so it follows a schedule. Raises MissingData without any measure.
    """
    names = measure_names(metrics)
    if not names:
        raise MissingData(
            "no sharpness measure points: ask for measures in the spec's measure.sharpness "
            "(hessian_top_eigenvalue, hessian_trace, …) and wait for the first evaluation"
        )
    ncols = min(2, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=5.2, height=3.4)
    for ax, name in zip(axes, names, strict=False):
        steps, values = finite(metrics[name])
        (line,) = ax.plot(steps, values, marker="o", markersize=3, linewidth=1.6, label=name)
        tag(line, "series", name)
        if name == LAMBDA_MAX and finite(metrics.get("lr", ()))[0]:
            lr_steps, lrs = finite(downsample(metrics["lr"], max_points))
            pairs = [(s, 2.0 / v) for s, v in zip(lr_steps, lrs, strict=True) if v > 0]
            (edge,) = ax.plot(
                [p[0] for p in pairs],
                [p[1] for p in pairs],
                linestyle="--",
                color="tab:red",
                linewidth=1.2,
                label="2/η (edge of stability)",
            )
            tag(edge, "series", "two_over_lr")
        title_text = MEASURES[name.rsplit("_", 1)[0] if name not in MEASURES else name].title
        ax.set(title=f"{name}\n{title_text}", xlabel="step")
        ax.title.set_fontsize("medium")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig
