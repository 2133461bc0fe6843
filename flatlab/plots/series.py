"""Metric series as plots need them: finite points only, and bucket min/max downsampling."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Point = tuple[float, float | None]
Series = Sequence[Point]
Metrics = Mapping[str, Series]


def finite(series: Series) -> tuple[list[float], list[float]]:
    """(steps, values) of the points whose value is a finite number, in the given order."""
    steps: list[float] = []
    values: list[float] = []
    for step, value in series:
        if value is not None and math.isfinite(value):
            steps.append(float(step))
            values.append(float(value))
    return steps, values


def downsample(series: Series, max_points: int) -> list[tuple[float, float]]:
    """At most `max_points` points of a step-ordered series, keeping each bucket's extremes.

    The first and last points are kept; the points between them are cut into
    `(max_points - 2) // 2` buckets of consecutive points, and each bucket keeps
    its minimum and its maximum (in step order; one point when they coincide), so
    a spike survives as it would on screen (the min/max decimation of plotting
    tools). Points with a None value are dropped. ValueError when `max_points` < 4.
    """
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}")
    points = [(float(s), float(v)) for s, v in series if v is not None and math.isfinite(v)]
    if len(points) <= max_points:
        return points
    inner = points[1:-1]
    buckets = (max_points - 2) // 2
    size = len(inner) / buckets
    kept = [points[0]]
    for b in range(buckets):
        chunk = inner[round(b * size) : round((b + 1) * size)]
        if not chunk:
            continue
        values = [v for _, v in chunk]
        low, high = values.index(min(values)), values.index(max(values))
        kept.extend(chunk[i] for i in sorted({low, high}))
    kept.append(points[-1])
    return kept
