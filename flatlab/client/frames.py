"""The API's JSON as pandas DataFrames: metric series, results, a benchmark's comparison.

Long frames have one row per observation (tidy: easy to filter, group, plot
with seaborn); wide frames pivot one column per metric. Missing numbers
(NaN or infinite on the server, sent as null) are NaN here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

METRIC_COLUMNS = ["name", "step", "epoch", "value", "time"]
STAT_COLUMNS = ["n", "mean", "std", "ci_low", "ci_high"]
PAIRED_COLUMNS = ["n_pairs", "mean_diff", "t", "p_value", "wilcoxon_statistic", "wilcoxon_p_value"]
ROW_COLUMNS = ["id", "label", "status", "benchmark_id", "created_at", "seed"]


def metrics_long(metrics: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """`{name: [{step, epoch, value, time}, …]}` → columns name, step, epoch, value, time.

    Rows keep the server's order: by metric name as sent, then by step.
    """
    rows = [{"name": name, **point} for name, points in metrics.items() for point in points]
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    frame["step"] = frame["step"].astype("int64")
    frame["epoch"] = frame["epoch"].astype("float64")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame


def as_columns(page: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """A metrics page's series as columns: `format=columns`' `series`, or the points
    of a server that answered in the point format (`metrics`) turned into them."""
    if "series" in page:
        return page["series"]
    return {
        name: {
            "step": [p["step"] for p in points],
            "epoch": [p["epoch"] for p in points],
            "value": [p["value"] for p in points],
            "time": [p["time"] for p in points],
        }
        for name, points in page["metrics"].items()
    }


def metrics_from_columns(series: dict[str, dict[str, list[Any]]]) -> pd.DataFrame:
    """`{name: {step, epoch, value, unix_time (or ISO time)}}` → the frame of `metrics_long`."""
    if not series:
        return metrics_long({})
    parts = []
    for name, columns in series.items():
        part = pd.DataFrame(
            {
                "step": pd.array(columns["step"], dtype="int64"),
                "epoch": pd.to_numeric(pd.Series(columns["epoch"], dtype="object")),
                "value": pd.to_numeric(pd.Series(columns["value"], dtype="object")),
            }
        )
        part.insert(0, "name", name)
        part["time"] = _times(columns)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame["epoch"] = frame["epoch"].astype("float64")
    frame["value"] = frame["value"].astype("float64")
    return frame[METRIC_COLUMNS]


def _times(columns: dict[str, list[Any]]) -> pd.Series:
    if "unix_time" in columns:  # seconds, to the microsecond the server stored
        micros = (pd.Series(columns["unix_time"], dtype="float64") * 1e6).round()
        return pd.to_datetime(micros.astype("int64"), unit="us", utc=True)
    return pd.to_datetime(pd.Series(columns["time"]), utc=True, format="ISO8601")


def metrics_wide(long: pd.DataFrame) -> pd.DataFrame:
    """One row per step (the index), `epoch`, then one column per metric (NaN where absent)."""
    values = long.pivot_table(index="step", columns="name", values="value", aggfunc="last")
    values = values.reindex(columns=list(dict.fromkeys(long["name"])))
    values.columns.name = None
    epoch = long.groupby("step")["epoch"].max()
    return pd.concat([epoch.rename("epoch"), values], axis=1).sort_index()


def result_rows(items: list[dict[str, Any]]) -> pd.DataFrame:
    """`GET /v1/results` rows → id, label, status, benchmark_id, created_at, seed, the
    requested spec fields (dotted names), then one column per summary metric."""
    rows = []
    for item in items:
        row = {k: item.get(k) for k in ROW_COLUMNS}
        row.update(item.get("fields") or {})
        row.update(item.get("summary") or {})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=ROW_COLUMNS)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601")
    return frame


def result_groups(groups: list[dict[str, Any]], group_by: list[str]) -> pd.DataFrame:
    """Grouped results → the group keys, `jobs`, then `<metric>_<statistic>` columns
    (n, mean, std, min, max, ci_low, ci_high), as `GET /v1/results?format=csv` writes them."""
    rows = []
    for group in groups:
        row: dict[str, Any] = {**group["key"], "jobs": group["jobs"]}
        for metric, stats in group["metrics"].items():
            row.update({f"{metric}_{stat}": value for stat, value in stats.items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else [*group_by, "jobs"])


def comparison_long(comparison: dict[str, Any]) -> pd.DataFrame:
    """A benchmark's per-configuration statistics → one row per (configuration, metric):
    runs, succeeded, n, mean, std (sample, over seeds), ci_low, ci_high (95% t interval)."""
    rows = []
    for label, config in comparison.get("configurations", {}).items():
        for metric, stats in config.get("metrics", {}).items():
            row = {"configuration": label, "metric": metric}
            row.update(runs=config.get("runs"), succeeded=config.get("succeeded"))
            row.update({k: stats.get(k) for k in STAT_COLUMNS})
            rows.append(row)
    columns = ["configuration", "metric", "runs", "succeeded", *STAT_COLUMNS]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("mean", "std", "ci_low", "ci_high"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def comparison_wide(long: pd.DataFrame, stat: str = "mean") -> pd.DataFrame:
    """Configurations as rows (grid order), metrics as columns, cells the statistic `stat`."""
    wide = long.pivot(index="configuration", columns="metric", values=stat)
    wide = wide.reindex(index=list(dict.fromkeys(long["configuration"])))
    wide.columns.name = None
    return wide


def paired_tests(comparison: dict[str, Any]) -> pd.DataFrame:
    """Paired tests against the baseline → one row per (configuration, metric): n_pairs,
    mean_diff (configuration − baseline), t and p_value (paired t-test), Wilcoxon's."""
    rows = [
        {"configuration": label, "metric": metric, **{k: test.get(k) for k in PAIRED_COLUMNS}}
        for label, tests in comparison.get("paired_tests", {}).items()
        for metric, test in tests.items()
    ]
    frame = pd.DataFrame(rows, columns=["configuration", "metric", *PAIRED_COLUMNS])
    for column in PAIRED_COLUMNS[1:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame
