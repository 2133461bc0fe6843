"""Running a preset in-process for the reproduction report, and the statistics it uses.

Each point of a preset (`flatlab.presets.apply_preset` → `sam_core.spec.benchmark.expand`,
the service's own validation) is trained with `sam_core.training.loop.Trainer` on one
CPU thread; `probe(trainer)` reads what the summary cannot hold (a test error of
sign(f), a weight norm, predictions) at every evaluation and at the end.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from flatlab.presets import apply_preset
from sam_core.spec.benchmark import BenchmarkBody, expand

Probe = Callable[[Any], dict[str, Any]]


@dataclass
class RunResult:
    label: str
    seed: int
    values: dict[str, Any]
    status: str
    summary: dict[str, float]
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    probes: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        """The probe taken at the last evaluation (the end of the run)."""
        return self.probes[-1][1] if self.probes else {}


WORKERS = 2  # processes, one thread each; the results do not depend on it
RUNS_DIR: Path | None = None  # where run_preset keeps its runs (scripts/reproduce.py --runs)


def run_preset(name: str, probe: Probe | None = None) -> list[RunResult]:
    """Train every point of preset `name`; results in grid order.

    With `RUNS_DIR` set, the runs are saved there as `NAME.pickle` together with the
    SHA-256 of the preset's expanded body, and read back instead of re-trained when
    that file's hash matches the preset's current body.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    body = BenchmarkBody.model_validate(apply_preset({"preset": name}))
    digest = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode())
    saved = RUNS_DIR / f"{name}.pickle" if RUNS_DIR is not None else None
    if saved is not None and saved.exists():
        stored_digest, runs = pickle.loads(saved.read_bytes())
        if stored_digest == digest.hexdigest():
            return list(runs)
    jobs = [
        (p.label, p.seed, p.values, p.spec.model_dump(mode="json"), probe) for p in expand(body)
    ]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=context) as pool:
        runs = list(pool.map(_run_point, *zip(*jobs, strict=True)))
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_bytes(pickle.dumps((digest.hexdigest(), runs)))
    return runs


def _run_point(
    label: str, seed: int, values: dict[str, Any], spec_json: dict[str, Any], probe: Probe | None
) -> RunResult:
    import torch

    from sam_core.spec import JobSpec
    from sam_core.training.events import Metrics
    from sam_core.training.loop import Trainer

    torch.set_num_threads(1)
    result = RunResult(label, seed, values, "", {})
    holder: dict[str, Any] = {}

    def on_event(event: Any) -> None:
        if not isinstance(event, Metrics):
            return
        for key, value in event.values.items():
            result.series.setdefault(key, []).append((event.step, float(value)))
        if probe is not None and "train_loss" in event.values:
            result.probes.append((event.step, probe(holder["trainer"])))

    trainer = Trainer(JobSpec.model_validate(spec_json), on_event, lambda: False)
    holder["trainer"] = trainer
    finished = trainer.run()
    result.status, result.summary = finished.status, finished.summary
    return result


def by_label(runs: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    return groups


def values_of(runs: Sequence[RunResult], key: str) -> list[float]:
    """`key` from each run's last probe, else from its summary (NaN when absent)."""
    return [float(r.last.get(key, r.summary.get(key, math.nan))) for r in runs]


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its two-sided 95% Student-t interval (0 for one value)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), 0.0
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float], n: int, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """statistic(all indices) and the 2.5/97.5 percentiles over resampled index sets."""
    rng = np.random.default_rng(seed)
    draws = [statistic(rng.integers(0, n, n)) for _ in range(resamples)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return statistic(np.arange(n)), float(low), float(high)


def num(x: float) -> str:
    """Three significant digits, the same on every run of the same numbers."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3g}"


def fmt_ci(mean: float, half: float) -> str:
    return f"{num(mean)} ± {num(half)}"


def side(low: float, high: float, expected: str) -> str:
    """✓ when [low, high] lies wholly on the expected side of 0 (`<` or `>`), ✗ when wholly
    on the other, ~ when it covers 0."""
    if (expected == "<" and high < 0) or (expected == ">" and low > 0):
        return "✓"
    if (expected == "<" and low > 0) or (expected == ">" and high < 0):
        return "✗"
    return "~"


def paired_part(a: Sequence[float], b: Sequence[float], expected: str) -> tuple[str, str]:
    """(mark, "mean ± half") of the paired differences a − b by seed, against `expected`."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    mean, half = mean_ci(diffs)
    return side(mean - half, mean + half, expected), fmt_ci(mean, half)


VERDICT_RULE = (
    "**agrees**: every part ✓; **partly**: some parts ✓, others ✗ or ~; **disagrees**: no "
    "part ✓ and at least one ✗ (where the runs can tell, they contradict the claim; any "
    "other part is ~); **inconclusive**: every part ~ (no interval can tell); **not "
    "tested**: the runs do not reach the setting the claim is about (the reason is given), "
    "whatever the marks."
)


def verdict(marks: Sequence[str]) -> str:
    """The verdict of a claim's part marks (✓ shown, ✗ contradicted, ~ interval covers 0),
    by `VERDICT_RULE`: a part whose interval cannot tell never counts against the claim."""
    if marks and all(m == "✓" for m in marks):
        return "agrees"
    if any(m == "✓" for m in marks):
        return "partly"
    if any(m == "✗" for m in marks):
        return "disagrees"
    return "inconclusive"
