"""flatlab's plots: pure functions from data (metric series, measure results, comparisons)
to a matplotlib `Figure`, and `to_bytes` for PNG or SVG.

No API, store or worker imports: the API renders these for `/v1/.../plots/{kind}`,
and the client can call them on data it downloaded. Figures are made without
pyplot (`matplotlib.figure.Figure`), so rendering is headless and leaves the
caller's matplotlib backend alone.
"""

from flatlab.plots.benchmarks import comparison, sharpness_gap
from flatlab.plots.figure import FORMATS, MissingData, to_bytes
from flatlab.plots.jobs import curves, measures
from flatlab.plots.landscape import density, landscape_1d, landscape_2d
from flatlab.plots.series import downsample
from flatlab.plots.studies import optimization_history, parameter_importance, tuning_curves

JOB_KINDS = ("curves", "measures", "landscape_1d", "landscape_2d", "density")
BENCHMARK_KINDS = ("comparison", "sharpness_gap", "tuning_curves")
STUDY_KINDS = ("history", "importance")

__all__ = [
    "BENCHMARK_KINDS",
    "FORMATS",
    "JOB_KINDS",
    "STUDY_KINDS",
    "MissingData",
    "comparison",
    "curves",
    "density",
    "downsample",
    "landscape_1d",
    "landscape_2d",
    "measures",
    "optimization_history",
    "parameter_importance",
    "sharpness_gap",
    "to_bytes",
    "tuning_curves",
]
