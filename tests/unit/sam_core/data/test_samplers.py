"""Samplers: what each kind draws, that importance sampling is unbiased, and exact resume."""

from __future__ import annotations

import io

import pytest
import torch

from sam_core.data import linear_importance, make_sampler


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def epoch(sampler):
    return list(sampler)


def test_uniform_covers_every_index_once_per_epoch_keeping_the_last_partial_batch():
    sampler = make_sampler("uniform", 10, 4, generator=gen())
    assert sampler.steps_per_epoch == 3
    first, second = epoch(sampler), epoch(sampler)
    for batches in (first, second):
        assert [len(b.indices) for b in batches] == [4, 4, 2]
        assert sorted(torch.cat([b.indices for b in batches]).tolist()) == list(range(10))
        assert all(b.weights is None for b in batches)
    assert not torch.equal(first[0].indices, second[0].indices)


def test_full_gives_every_index_in_one_step():
    batches = epoch(make_sampler("full", 7, 2, generator=gen()))
    assert len(batches) == 1 and batches[0].indices.tolist() == list(range(7))


def test_tau_nice_draws_n_over_tau_subsets_of_size_tau():
    sampler = make_sampler("tau_nice", 10, 128, tau=3, generator=gen())
    batches = epoch(sampler)
    assert sampler.steps_per_epoch == len(batches) == 3
    for b in batches:
        assert len(b.indices) == 3 and len(set(b.indices.tolist())) == 3
    hits = torch.zeros(10)
    for _ in range(2000):
        for b in sampler:
            hits[b.indices] += 1
    assert ((hits / hits.sum() - 0.1).abs() < 0.01).all()  # every example equally likely


def test_tau_nice_needs_a_tau_no_larger_than_n():
    with pytest.raises(ValueError, match=r"needs tau"):
        make_sampler("tau_nice", 10, 4, generator=gen())
    with pytest.raises(ValueError, match=r"1 ≤ tau ≤ n = 10, got tau=11"):
        make_sampler("tau_nice", 10, 4, tau=11, generator=gen())


def test_importance_frequencies_follow_q():
    scores = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0])
    sampler = make_sampler("importance", 5, 50, generator=gen(), weights=scores)
    counts = torch.zeros(5)
    for _ in range(400):
        for b in sampler:
            counts += torch.bincount(b.indices, minlength=5)
    assert torch.allclose(counts / counts.sum(), torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0]), atol=0.01)


def test_reweighted_importance_gradient_is_unbiased():
    # Least squares: the weighted mean of per-example gradients estimates the full gradient.
    torch.manual_seed(0)
    x = torch.randn(40, 3) * torch.linspace(0.2, 3.0, 40)[:, None]
    y = torch.randn(40)
    w = torch.randn(3)
    per_example = 2 * (x @ w - y)[:, None] * x
    full = per_example.mean(0)
    sampler = make_sampler("importance", 40, 8, generator=gen(), weights=linear_importance(x))
    estimates = [
        (b.weights[:, None].float() * per_example[b.indices]).mean(0)
        for _ in range(800)
        for b in sampler
    ]
    mean = torch.stack(estimates).mean(0)
    assert torch.allclose(mean, full, rtol=0.05, atol=0.05 * full.norm().item())
    unweighted = make_sampler("importance", 40, 8, generator=gen(), reweight=False)
    assert all(b.weights is None for b in unweighted)


def test_new_probabilities_apply_from_the_next_epoch():
    sampler = make_sampler("importance", 4, 2, generator=gen())
    batches = iter(sampler)
    next(batches)
    sampler.set_probabilities(torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert torch.equal(sampler.probabilities, torch.full((4,), 0.25, dtype=torch.float64))
    list(batches)
    assert all(b.indices.tolist() == [3, 3] for b in sampler)


def test_bad_importance_scores_are_refused():
    sampler = make_sampler("importance", 3, 2, generator=gen())
    with pytest.raises(ValueError, match=r"need 3 importance scores, got shape \(2,\)"):
        sampler.set_probabilities(torch.ones(2))
    with pytest.raises(ValueError, match=r"finite, non-negative and not all zero"):
        sampler.set_probabilities(torch.tensor([1.0, -1.0, 1.0]))


def test_linear_importance_is_the_squared_input_norm():
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    assert linear_importance(x).tolist() == [25.0, 1.0]


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"unknown sampling 'stratified'"):
        make_sampler("stratified", 10, 2, generator=gen())


def flatten(batches):
    return [
        (b.indices.tolist(), None if b.weights is None else b.weights.tolist()) for b in batches
    ]


def roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


KINDS = [
    ("uniform", {}),
    ("full", {}),
    ("tau_nice", {"tau": 3}),
    ("importance", {"weights": torch.arange(1.0, 12.0)}),
]


@pytest.mark.parametrize(("kind", "extra"), KINDS, ids=[k for k, _ in KINDS])
@pytest.mark.parametrize("stop_after", [0, 1, 2, 3])
def test_resume_from_state_dict_replays_the_same_batches(kind, extra, stop_after):
    reference = make_sampler(kind, 11, 4, generator=gen(7), **extra)
    expected = flatten(epoch(reference) + epoch(reference) + epoch(reference))
    # An interrupted run: one epoch, then `stop_after` batches of the next, then a checkpoint.
    run = make_sampler(kind, 11, 4, generator=gen(7), **extra)
    seen = epoch(run)
    batches = iter(run)
    seen += [next(batches) for _ in range(min(stop_after, run.steps_per_epoch))]
    state = roundtrip(run.state_dict())
    # The resumed run starts from a differently seeded generator and the saved state.
    resumed = make_sampler(kind, 11, 4, generator=gen(123), **extra)
    resumed.load_state_dict(state)
    seen += epoch(resumed)
    seen += epoch(resumed)
    if len(seen) < len(expected):
        seen += epoch(resumed)
    assert flatten(seen)[: len(expected)] == expected


def test_state_dict_counts_epochs_and_refuses_a_different_sampler():
    sampler = make_sampler("uniform", 10, 5, generator=gen())
    epoch(sampler)
    assert sampler.state_dict()["epoch"] == 1 and sampler.epoch == 1
    other = make_sampler("uniform", 10, 2, generator=gen())
    with pytest.raises(ValueError, match=r"sampler state is for .*'uniform', 10, 5"):
        other.load_state_dict(sampler.state_dict())


@pytest.mark.parametrize(("kind", "extra"), KINDS, ids=[k for k, _ in KINDS])
def test_a_new_epoch_may_start_before_the_last_iterator_is_exhausted(kind, extra):
    exhausted = make_sampler(kind, 11, 4, generator=gen(2), **extra)
    expected = flatten(epoch(exhausted) + epoch(exhausted))
    stepped = make_sampler(kind, 11, 4, generator=gen(2), **extra)
    seen = []
    for _ in range(2):  # the trainer's way: next() steps_per_epoch times, then iter() again
        batches = iter(stepped)
        seen += [next(batches) for _ in range(stepped.steps_per_epoch)]
    assert flatten(seen) == expected and stepped.state_dict()["epoch"] == 2
