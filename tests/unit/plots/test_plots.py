"""Every plot kind renders to PNG and SVG, shows the series/bars its data hold, and draws
the numbers it is given (2/η from the lr, bar heights and intervals, Kendall τ by hand)."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest

from flatlab import plots
from flatlab.plots.jobs import measure_names
from tests.unit.plots.svg import assert_drawn, svg_ids

STEPS = range(0, 200, 10)


def _series(f, steps=STEPS):
    return [(s, f(s)) for s in steps]


def job_metrics() -> dict[str, list[tuple[int, float | None]]]:
    return {
        "train_loss_step": _series(
            lambda s: 2.0 * math.exp(-s / 80) + 0.05 * math.sin(s), range(200)
        ),
        "train_loss": _series(lambda s: 2.0 * math.exp(-s / 80)),
        "test_loss": _series(lambda s: 2.1 * math.exp(-s / 90) + 0.1),
        "train_acc": _series(lambda s: 1 - math.exp(-s / 50)),
        "test_acc": _series(lambda s: 0.95 - math.exp(-s / 50)),
        "lr": _series(lambda s: 0.1 if s < 100 else 0.05, range(200)),
        "hessian_top_eigenvalue": _series(lambda s: min(20.0, 0.2 * s)),
        "hessian_trace": _series(lambda s: 50 + s),
        "hessian_trace_stderr": _series(lambda s: 1.0),
        "worst_case_sharpness": _series(lambda s: 0.01 * s),
        "worst_case_sharpness_2": [(0, None), (10, 0.2), (20, 0.3)],
        "loss_landscape_1d": _series(lambda s: 1.0),  # a landscape's scalar is not over steps
    }


def render_both(fig_factory):
    return plots.to_bytes(fig_factory(), "png"), plots.to_bytes(fig_factory(), "svg")


def test_curves_draw_every_loss_and_accuracy_series_present():
    metrics = job_metrics()
    png, svg = render_both(lambda: plots.curves(metrics, title="SAM"))
    assert_drawn(png, min_width=600)
    assert sorted(svg_ids(svg, "series")) == sorted(
        ["train_loss", "test_loss", "train_loss_step", "train_acc", "test_acc"]
    )


def test_curves_with_losses_only_have_one_panel_and_no_accuracy():
    metrics = {k: v for k, v in job_metrics().items() if k in ("train_loss", "test_loss")}
    fig = plots.curves(metrics)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1
    assert svg_ids(plots.to_bytes(fig, "svg"), "series") == ["train_loss", "test_loss"]


def test_measures_draw_each_sharpness_measure_and_the_edge_of_stability_from_lr():
    metrics = job_metrics()
    assert measure_names(metrics) == [
        "hessian_top_eigenvalue",
        "hessian_trace",
        "worst_case_sharpness",
        "worst_case_sharpness_2",
    ]
    fig = plots.measures(metrics)
    png, svg = plots.to_bytes(fig, "png"), plots.to_bytes(fig, "svg")
    assert_drawn(png, min_width=600)
    assert sorted(svg_ids(svg, "series")) == sorted([*measure_names(metrics), "two_over_lr"])
    edge = next(line for line in fig.axes[0].lines if line.get_gid() == "series-two_over_lr")
    lr = dict(metrics["lr"])
    steps, values = edge.get_xdata(), edge.get_ydata()
    assert len(steps) == 200
    for step, value in zip(steps, values, strict=True):
        assert value == pytest.approx(2.0 / lr[int(step)], rel=1e-12)


def test_downsampled_curves_keep_extremes():
    spiky = [(s, 1.0 if s != 777 else 50.0) for s in range(10_000)]
    fig = plots.curves({"train_loss_step": spiky, "train_loss": spiky[::100]}, max_points=200)
    line = next(li for li in fig.axes[0].lines if li.get_gid() == "series-train_loss_step")
    assert len(line.get_xdata()) <= 200
    assert max(line.get_ydata()) == 50.0


@pytest.mark.parametrize("size", [4, 5, 10, 101])
def test_downsample_keeps_ends_and_every_buckets_min_and_max(size):
    rng = np.random.default_rng(size)
    series = [(int(s), float(v)) for s, v in enumerate(rng.normal(size=1000))]
    series[500] = (500, None)  # a NaN stored as null is dropped
    kept = plots.downsample(series, size)
    assert len(kept) <= size
    assert kept[0] == series[0] and kept[-1] == series[-1]
    assert [s for s, _ in kept] == sorted({s for s, _ in kept})  # in step order, no repeats
    assert set(kept) <= set(series)
    values = [v for _, v in series if v is not None]
    assert min(values) in [v for _, v in kept] and max(values) in [v for _, v in kept]


def test_downsample_leaves_short_series_and_refuses_tiny_budgets():
    series = [(0, 1.0), (1, None), (2, 3.0)]
    assert plots.downsample(series, 4) == [(0, 1.0), (2, 3.0)]
    with pytest.raises(ValueError, match="at least 4"):
        plots.downsample(series, 3)


def test_job_plots_say_what_is_missing():
    with pytest.raises(plots.MissingData, match="no loss or accuracy"):
        plots.curves({"lr": [(0, 0.1)]})
    with pytest.raises(plots.MissingData, match=r"measure\.sharpness"):
        plots.measures({"train_loss": [(0, 1.0)], "hessian_trace": [(0, None)]})
    with pytest.raises(plots.MissingData, match="'losses'"):
        plots.landscape_1d({"alphas": [0.0]})


def test_landscapes_and_density_render():
    alphas = np.linspace(-1, 1, 11)
    one = {"alphas": alphas.tolist(), "losses": (alphas**2 + 0.5).tolist(), "loss": 0.5}
    grid = np.add.outer(alphas**2, 3 * alphas**2) + 0.5
    two = {"alphas": alphas.tolist(), "losses": grid.tolist(), "loss": 0.5}
    lam = np.linspace(-1, 30, 200)
    dens = {"grid": lam.tolist(), "density": np.exp(-((lam - 2) ** 2)).tolist(), "lambda_max": 28.0}
    for draw, result in (
        (plots.landscape_1d, one),
        (plots.landscape_2d, two),
        (plots.density, dens),
    ):
        png, svg = render_both(lambda draw=draw, result=result: draw(result, step=40))
        assert_drawn(png)
        assert len(svg_ids(svg, "series")) == 1
        assert b"at step 40" in svg or "step 40" in svg.decode()


def test_landscape_2d_axes_follow_losses_i_j_at_alpha_i_beta_j():
    alphas = np.linspace(-1, 1, 5)
    losses = np.add.outer(10 * alphas**2, 0 * alphas)  # rises in α (first index), flat in β
    fig = plots.landscape_2d({"alphas": alphas.tolist(), "losses": losses.tolist()})
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("α") and ax.get_ylabel().startswith("β")
    filled = next(c for c in ax.collections if c.get_gid() == "series-loss")
    top = filled.get_paths()[-1].vertices  # the highest band: |α| near 1, every β
    assert np.abs(top[:, 0]).min() > 0.9
    assert top[:, 1].min() == -1.0 and top[:, 1].max() == 1.0
    with pytest.raises(plots.MissingData, match="square grid"):
        plots.landscape_2d({"alphas": [0.0, 1.0], "losses": [[1.0, 2.0]]})


CONFIGS = {
    "SGD": {"metrics": {"final_test_acc": {"n": 3, "mean": 0.90, "ci_low": 0.88, "ci_high": 0.92}}},
    "SAM": {"metrics": {"final_test_acc": {"n": 3, "mean": 0.93, "ci_low": 0.92, "ci_high": 0.94}}},
    "ASAM": {
        "metrics": {"final_test_acc": {"n": 1, "mean": 0.91, "ci_low": None, "ci_high": None}}
    },
    "GSAM": {"metrics": {}},
}


def test_comparison_draws_one_bar_per_configuration_with_a_value_at_its_mean_and_ci():
    fig = plots.comparison(CONFIGS, "final_test_acc", baseline="SGD")
    png, svg = plots.to_bytes(fig, "png"), plots.to_bytes(fig, "svg")
    assert_drawn(png)
    assert svg_ids(svg, "bar") == ["SGD", "SAM", "ASAM"]
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.90, 0.93, 0.91])
    # error bar segments: their ends are the interval's ends
    ends = sorted(
        round(float(y), 10)
        for c in ax.collections
        for seg in c.get_segments()
        for y in (seg[0][1], seg[-1][1])
    )
    assert ends == sorted([0.88, 0.92, 0.92, 0.94])
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "SGD\nn=3",
        "SAM\nn=3",
        "ASAM\nn=1",
        "GSAM\nn=0",
    ]


def test_comparison_without_the_metric_says_so():
    with pytest.raises(plots.MissingData, match="final_train_acc"):
        plots.comparison(CONFIGS, "final_train_acc")


def kendall_by_hand(x, y):
    """τ-a from concordant and discordant pairs (equals τ-b without ties)."""
    signs = [
        np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
        for i, j in itertools.combinations(range(len(x)), 2)
    ]
    return sum(signs) / len(signs)


def test_sharpness_gap_scatter_groups_by_configuration_and_titles_kendall_tau():
    rng = np.random.default_rng(0)
    x = rng.normal(size=8)
    y = x + 0.5 * rng.normal(size=8)
    runs = [("SGD" if i < 4 else "SAM", float(x[i]), float(y[i])) for i in range(8)]
    runs.append(("SAM", None, 0.1))  # a run without the measure is left out
    fig = plots.sharpness_gap(runs, "hessian_trace", "gen_gap_acc")
    png, svg = plots.to_bytes(fig, "png"), plots.to_bytes(fig, "svg")
    assert_drawn(png)
    assert svg_ids(svg, "series") == ["SGD", "SAM"]
    title = fig.axes[0].get_title()
    tau = float(re.search(r"τ = (-?[\d.]+)", title).group(1))
    assert tau == pytest.approx(kendall_by_hand(x, y), abs=5e-4)  # printed to 3 decimals
    assert "n = 8" in title


def test_sharpness_gap_needs_two_runs():
    with pytest.raises(plots.MissingData, match="1 run"):
        plots.sharpness_gap([("SGD", 1.0, 0.1), ("SAM", None, 0.2)], "hessian_trace", "gen_gap_acc")


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="'gif'"):
        plots.to_bytes(plots.landscape_1d({"alphas": [0, 1], "losses": [1, 2]}), "gif")


def test_landscape_marks_the_trained_weights_and_density_marks_lambda_max_from_the_nodes():
    # as the worker stores them: the scalars (`loss`, `lambda_max`) went to metric values
    alphas = [-1.0, -0.5, 0.0, 0.5, 1.0]
    fig = plots.landscape_1d({"alphas": alphas, "losses": [2.0, 1.0, 0.25, 1.0, 2.0]})
    (marker,) = fig.axes[0].collections
    assert marker.get_offsets().tolist() == [[0.0, 0.25]]
    lam = np.linspace(-1, 5, 50)
    fig = plots.density(
        {"grid": lam.tolist(), "density": np.ones(50).tolist(), "nodes": [0.1, 4.2]}
    )
    (edge,) = [line for line in fig.axes[0].lines if line.get_label() == "λ_max"]
    assert edge.get_xdata()[0] == 4.2
