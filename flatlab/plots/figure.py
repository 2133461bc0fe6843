"""Figures on matplotlib's Agg canvas and their bytes; artists tagged so an SVG names them.

Every plotted series carries an SVG id `series-<name>` and every bar `bar-<label>`
(`tag`), so a test or a script can count what a figure shows from its SVG.
"""

from __future__ import annotations

import io
import re
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FORMATS: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}
DPI = 110


class MissingData(ValueError):
    """The data a plot needs is absent; the message says what is missing and how to get it."""


def new_figure(
    ncols: int = 1, nrows: int = 1, *, width: float = 6.4, height: float = 4.0
) -> tuple[Figure, list[Axes]]:
    """A figure of `nrows` × `ncols` panels (each `width` × `height` inches), axes flattened."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def to_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """The figure as PNG or SVG bytes; ValueError for another format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def tag(artist: Artist, kind: str, name: str) -> None:
    """Name an artist in the SVG output: `<g id="kind-name">` (name made id-safe)."""
    artist.set_gid(f"{kind}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}")
