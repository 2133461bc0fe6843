"""Plots of one measure result: 1-D and 2-D loss landscapes and the Hessian eigenvalue density.

Input is the measure's non-scalar result as the worker stores it (the `value`
of the artifact `<measure>_step<N>.json`): for landscapes `alphas`, `losses`
and `loss` (at the trained weights), for the density `grid` and `density`
(and the quadrature `nodes`/`weights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from flatlab.plots.figure import MissingData, new_figure, tag


def _field(result: Mapping[str, Any], name: str, measure: str) -> Any:
    if name not in result:
        raise MissingData(f"the {measure} result has no {name!r}")
    return result[name]


def landscape_1d(result: Mapping[str, Any], *, step: int | None = None) -> Figure:
    """L(w + α d) against α along one filter-normalised direction d (Li et al. 2018,
    "Visualizing the loss landscape of neural nets"); the trained weights at α = 0."""
    alphas = np.asarray(_field(result, "alphas", "loss_landscape_1d"), dtype=float)
    losses = np.asarray(_field(result, "losses", "loss_landscape_1d"), dtype=float)
    fig, (ax,) = new_figure(width=5.6, height=3.8)
    (line,) = ax.plot(alphas, losses, marker="o", markersize=3, label="L(w + αd)")
    tag(line, "series", "loss")
    # the loss at w itself: stored as a scalar value of the job, and on the grid at α = 0
    at_zero = np.flatnonzero(np.abs(alphas) < 1e-12)
    base = result.get("loss", losses[at_zero[0]] if at_zero.size else None)
    if base is not None:
        ax.scatter([0.0], [float(base)], color="tab:red", zorder=3, label="trained w")
    ax.set(xlabel="α (filter-normalised direction)", ylabel="training loss")
    ax.set_title("1-D loss landscape" + (f" at step {step}" if step is not None else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def landscape_2d(result: Mapping[str, Any], *, step: int | None = None) -> Figure:
    """Contours of L(w + α d₁ + β d₂) on the grid; `losses[i][j]` is at (alphas[i], alphas[j])."""
    alphas = np.asarray(_field(result, "alphas", "loss_landscape_2d"), dtype=float)
    losses = np.asarray(_field(result, "losses", "loss_landscape_2d"), dtype=float)
    if losses.shape != (len(alphas), len(alphas)):
        raise MissingData(f"loss_landscape_2d losses have shape {losses.shape}, not a square grid")
    fig, (ax,) = new_figure(width=5.2, height=4.4)
    # losses[i][j] is at α = alphas[i] (first direction, x) and β = alphas[j] (y)
    filled = ax.contourf(alphas, alphas, losses.T, levels=20, cmap="viridis")
    tag(filled, "series", "loss")
    ax.contour(alphas, alphas, losses.T, levels=10, colors="white", linewidths=0.5, alpha=0.6)
    ax.scatter([0.0], [0.0], color="tab:red", marker="x", zorder=3, label="trained w")
    fig.colorbar(filled, ax=ax, label="training loss")
    ax.set(xlabel="α (direction 1)", ylabel="β (direction 2)", aspect="equal")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_title("2-D loss landscape" + (f" at step {step}" if step is not None else ""))
    ax.legend(fontsize="small", loc="upper right")
    return fig


def density(result: Mapping[str, Any], *, step: int | None = None) -> Figure:
    """The smoothed Hessian eigenvalue density from stochastic Lanczos quadrature
    (Ghorbani et al. 2019, "An investigation into neural net optimization via Hessian
    eigenvalue density"), on a log scale as that paper shows it; λ_max marked."""
    grid = np.asarray(_field(result, "grid", "hessian_density"), dtype=float)
    values = np.asarray(_field(result, "density", "hessian_density"), dtype=float)
    fig, (ax,) = new_figure(width=5.6, height=3.8)
    floor = max(values.max() * 1e-8, np.finfo(float).tiny) if values.size else 1e-300
    (line,) = ax.semilogy(grid, np.maximum(values, floor), label="density")
    tag(line, "series", "density")
    # λ_max is the largest quadrature node (a Ritz value); older results carry it by name
    nodes = result.get("nodes") or []
    lambda_max = result.get("lambda_max", max(nodes) if nodes else None)
    if lambda_max is not None:
        ax.axvline(float(lambda_max), color="tab:red", linestyle="--", label="λ_max")
    ax.set(xlabel="eigenvalue λ", ylabel="density (log)")
    ax.set_title("Hessian eigenvalue density" + (f" at step {step}" if step is not None else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
