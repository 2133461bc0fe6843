"""The comparison's statistics equal the same numbers computed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from api.services.comparison import (
    Run,
    compare,
    describe,
    equal_budget,
    flatness_correlations,
    metric_bounds,
    paired_tests,
    rank,
)
from tests.tolerance import float_tolerance

SGD = [0.91, 0.90, 0.93, 0.92, 0.89, 0.94, 0.90]
SAM = [0.93, 0.91, 0.95, 0.92, 0.92, 0.97, 0.93]


def runs_of(label: str, accs: list[float], **extra: list[float]) -> list[Run]:
    out = []
    for seed, acc in enumerate(accs):
        summary = {"final_test_acc": acc, **{k: v[seed] for k, v in extra.items()}}
        out.append(Run(f"{label}{seed}", label, seed, "succeeded", summary))
    return out


def test_describe_is_mean_sample_std_and_t_interval():
    got = describe(SGD)
    n, mean, std = len(SGD), float(np.mean(SGD)), float(np.std(SGD, ddof=1))
    half = stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)
    assert got["n"] == n
    tol = float_tolerance(ops=2 * n)  # a mean, then a sum of squares, of n values
    assert got["mean"] == pytest.approx(mean, rel=tol)
    assert got["std"] == pytest.approx(std, rel=tol)
    assert got["ci_low"] == pytest.approx(mean - half, rel=tol)
    assert got["ci_high"] == pytest.approx(mean + half, rel=tol)


def test_describe_of_one_run_has_no_spread_and_skips_missing_values():
    assert describe([0.5, None, math.nan]) == {
        "n": 1,
        "mean": 0.5,
        "std": None,
        "ci_low": None,
        "ci_high": None,
        "small_n": True,
    }


def test_paired_test_pairs_by_seed_and_matches_a_hand_computed_t():
    runs = runs_of("sgd", SGD) + list(reversed(runs_of("sam", SAM)))
    result = paired_tests(runs, "sgd", ["final_test_acc"])["sam"]["final_test_acc"]

    d = np.array(SAM) - np.array(SGD)
    n = len(d)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    assert result["n_pairs"] == n
    assert result["mean_diff"] == pytest.approx(d.mean(), abs=1e-12)
    assert result["t"] == pytest.approx(t, rel=1e-9)
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), n - 1), rel=1e-9)
    assert result["wilcoxon_p_value"] == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)


def test_paired_test_uses_only_seeds_both_ran_and_no_wilcoxon_under_six_pairs():
    runs = runs_of("sgd", SGD[:4]) + runs_of("sam", SAM[:3])
    result = paired_tests(runs, "sgd", ["final_test_acc"])["sam"]["final_test_acc"]
    assert result["n_pairs"] == 3
    assert result["wilcoxon_p_value"] is None


def test_failed_runs_are_left_out():
    runs = [*runs_of("sgd", SGD), Run("x", "sgd", 99, "failed", None)]
    per = compare(runs, baseline="sgd", metric="final_test_acc")["configurations"]["sgd"]
    assert per["runs"] == len(SGD) + 1
    assert per["succeeded"] == len(SGD)
    assert per["metrics"]["final_test_acc"]["n"] == len(SGD)


def test_ranking_orders_by_mean_and_puts_missing_last():
    per = {
        "a": {"metrics": {"loss": {"mean": 0.3}}},
        "b": {"metrics": {"loss": {"mean": 0.1}}},
        "c": {"metrics": {}},
    }
    assert [r["label"] for r in rank(per, "loss", "asc")] == ["b", "a", "c"]
    assert [r["rank"] for r in rank(per, "loss", "desc")] == [1, 2, None]


def tau_b_without_ties(x: list[float], y: list[float]) -> float:
    n = len(x)
    signs = [np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i in range(n) for j in range(i + 1, n)]
    return float(sum(signs) / (n * (n - 1) / 2))


def test_kendall_tau_between_sharpness_and_gap_over_all_runs():
    trace = [10.0, 12.0, 9.0, 15.0, 11.0, 14.0, 8.5]
    gap = [0.05, 0.07, 0.06, 0.10, 0.04, 0.08, 0.03]
    noise = [0.1] * len(trace)
    runs = runs_of("sgd", SGD, hessian_trace=trace, hessian_trace_stderr=noise, gen_gap_acc=gap)
    (entry,) = flatness_correlations(runs)
    assert entry["measure"] == "hessian_trace"
    assert entry["gap"] == "gen_gap_acc"
    assert entry["n"] == len(trace)
    assert entry["tau"] == pytest.approx(tau_b_without_ties(trace, gap), abs=1e-12)
    assert entry["p_value"] == pytest.approx(stats.kendalltau(trace, gap).pvalue, abs=1e-12)


def run_with_curve(label: str, seed: int, per_step: float, accs: list[float]) -> Run:
    """100 steps, evaluations every 10 steps, `per_step` gradient evaluations a step."""
    steps = list(range(10, 101, 10))
    series = {
        "test_acc": list(zip(steps, accs, strict=True)),
        "grad_evals": [(s, per_step * s) for s in range(5, 101, 5)],
    }
    summary = {"steps": 100.0, "grad_evals": 100 * per_step, "train_seconds": 100 * per_step}
    return Run(f"{label}{seed}", label, seed, "succeeded", summary, series)


def test_equal_gradient_evaluations_reads_sam_at_half_its_steps():
    accs = [i / 10 for i in range(1, 11)]
    runs = [run_with_curve("sgd", 0, 1.0, accs), run_with_curve("sam", 0, 2.0, accs)]
    result = equal_budget(runs, "grad_evals")
    assert result["budget"] == 100.0
    assert result["metrics"]["test_acc"]["sgd"]["mean"] == 1.0  # step 100
    assert result["metrics"]["test_acc"]["sam"]["mean"] == 0.5  # step 50 = 100 evaluations


def test_equal_train_seconds_assumes_steady_step_time():
    accs = [i / 10 for i in range(1, 11)]
    slow = run_with_curve("sam", 0, 2.0, accs)
    slow = Run("s", "sam", 0, "succeeded", {**slow.summary, "train_seconds": 300.0}, slow.series)
    runs = [run_with_curve("sgd", 0, 1.0, accs), slow]
    result = equal_budget(runs, "train_seconds")
    assert result["budget"] == 100.0
    assert result["metrics"]["test_acc"]["sam"]["mean"] == 0.3  # 100 s is step 33: eval at 30


# --- bounded metrics, small n, shared clocks ----------------------------------------------


def test_an_accuracy_interval_stays_inside_zero_one_at_n_2():
    # n = 2 near the top: the plain t interval reached 1.127.
    accs = [0.93, 0.995]
    got = describe(accs, metric_bounds("final_test_acc"))
    n, mean, std = 2, float(np.mean(accs)), float(np.std(accs, ddof=1))
    assert mean + stats.t.ppf(0.975, n - 1) * std / math.sqrt(n) > 1.0  # what was shown
    assert 0.0 < got["ci_low"] < mean < got["ci_high"] < 1.0
    assert got["small_n"] is True


def test_the_bounded_interval_is_the_t_interval_of_the_logit_mapped_back():
    got = describe(SAM, (0.0, 1.0))
    n, mean, std = len(SAM), float(np.mean(SAM)), float(np.std(SAM, ddof=1))
    half = stats.t.ppf(0.975, n - 1) * std / (math.sqrt(n) * mean * (1 - mean))
    logit = math.log(mean / (1 - mean))
    tol = float_tolerance(ops=2 * n)
    assert got["ci_low"] == pytest.approx(1 / (1 + math.exp(-(logit - half))), rel=tol)
    assert got["ci_high"] == pytest.approx(1 / (1 + math.exp(-(logit + half))), rel=tol)
    assert got["small_n"] is False


def test_a_generalization_gap_in_accuracy_is_bounded_by_minus_one_and_one():
    assert metric_bounds("gen_gap_acc") == (-1.0, 1.0)
    assert metric_bounds("best_test_acc") == (0.0, 1.0)
    assert metric_bounds("final_test_loss") is None
    got = describe([-0.99, -0.90], metric_bounds("gen_gap_acc"))
    assert -1.0 < got["ci_low"] < got["ci_high"] < 1.0


def _ensemble(label: str, seconds: float, accs: list[float]) -> list[Run]:
    """Seeds trained as one ensemble: every member reads the ensemble's one clock."""
    return [
        Run(f"{label}{seed}", label, seed, "succeeded", {
            "final_test_acc": acc, "train_seconds": seconds, "ensemble_size": float(len(accs))
        })
        for seed, acc in enumerate(accs)
    ]  # fmt: skip


def test_a_clock_shared_by_an_ensemble_enters_no_statistic():
    runs = _ensemble("sgd", 40.0, SGD) + _ensemble("sam", 75.0, SAM)
    result = compare(runs, baseline="sgd", metric="final_test_acc")
    sam = result["configurations"]["sam"]
    assert sam["shared_clock"] == len(SAM)
    # Was: train s 75.0 ± 0.0 and a paired p-value of 0.000 from seven copies of one clock.
    assert sam["metrics"]["train_seconds"]["n"] == 0
    paired = result["paired_tests"]["sam"]["train_seconds"]
    assert (paired["n_pairs"], paired["p_value"]) == (0, None)
    assert result["paired_tests"]["sam"]["final_test_acc"]["n_pairs"] == len(SAM)
    equal = result["equal_train_seconds"]
    assert equal["budget"] is None
    assert equal["left_out"] == {"runs": len(SGD) + len(SAM), "labels": ["sam", "sgd"]}


def test_equal_train_seconds_leaves_ensemble_members_out_of_a_mixed_grid():
    accs = [i / 10 for i in range(1, 11)]
    solo = [run_with_curve("sgd", seed, 1.0, accs) for seed in range(2)]
    shared = run_with_curve("sam", 0, 2.0, accs)
    shared = Run(
        "e", "sam", 0, "succeeded", {**shared.summary, "ensemble_size": 4.0}, shared.series
    )
    result = equal_budget([*solo, shared], "train_seconds")
    assert result["budget"] == 100.0
    assert set(result["metrics"]["test_acc"]) == {"sgd"}  # no n = 0 row for "sam"
    assert result["left_out"] == {"runs": 1, "labels": ["sam"]}
    sgd = result["metrics"]["test_acc"]["sgd"]
    assert 0.0 <= sgd["ci_low"] <= sgd["ci_high"] <= 1.0
