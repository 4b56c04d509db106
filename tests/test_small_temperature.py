"""Very small T, down to the smallest positive float: nothing hangs, nothing is silently wrong.

The batch method's T -> 0 limit is a uniform pick among the pool's most frequent outcomes; the
exact method needs at least 1/T draws per output, so it either samples soundly (tree plans at
T = 0.01) or refuses at once with a clear error; auto falls back to batch before drawing for exact.
"""

from __future__ import annotations

import contextlib
import signal

import pytest
import torch
from conftest import PEAKED, ZIPF, categorical_draw

import implicit_temperature as it
from implicit_temperature.core.validation import inverse_temperature

TINY = [1e-8, 2e-18, 1e-19, 7e-20, 1e-300, 1e-310, 5e-324]


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging) when the block takes longer than ``seconds``."""

    def fail(*_):
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_inverse_temperature_is_defined_for_every_positive_float():
    assert inverse_temperature(1e-310) == float("inf")
    assert inverse_temperature(5e-324) == float("inf")
    assert inverse_temperature(1e-19) == pytest.approx(1e19)


# keys of one problem: outcome 3 five times (the mode), 1 four times, 0 and 2 once
POOL = torch.tensor([[3, 1, 3, 0, 1, 3, 2, 1, 3, 1, 3]])


@pytest.mark.parametrize("temperature", TINY)
def test_batch_limit_is_the_most_frequent_outcome(temperature):
    probs = it.selection_probabilities(POOL, temperature)
    assert not torch.isnan(probs).any()
    chosen = probs[0].reshape(-1)
    mode = POOL[0] == 3
    assert torch.allclose(chosen[mode], torch.full((5,), 0.2, dtype=torch.float64))
    assert float(chosen[~mode].sum()) == 0.0
    sel = it.batch_selection(POOL, temperature, generator=0)
    assert int(POOL[0, sel.index[0]]) == 3 and int(sel.depth[0]) > 0
    assert float(sel.level[0]) >= 5.0  # the cascade stepped down to the largest count


def test_batch_limit_with_tied_modes_is_uniform_over_them():
    keys = torch.tensor([[4, 4, 7, 7, 1]])
    probs = it.selection_probabilities(keys, 1e-310)[0]
    assert torch.allclose(probs, torch.tensor([0.25, 0.25, 0.25, 0.25, 0.0], dtype=torch.float64))
    plugin = it.selection_probabilities(keys, 1e-310, estimator="plugin")[0]
    assert torch.allclose(plugin, probs)


def test_batch_limit_is_continuous_with_ordinary_small_t():
    """At T = 1/50 (s = 50 > every count) the rule already is 'most frequent outcome'; the
    tiny-T answers are the same."""
    at_small = it.selection_probabilities(POOL, 1 / 50)
    for t in TINY:
        assert torch.allclose(it.selection_probabilities(POOL, t), at_small)


@pytest.mark.parametrize("temperature", [1e-19, 7e-20, 1e-310, 5e-324, 1e-8])
def test_exact_refuses_at_once_when_one_output_needs_more_than_the_budget(temperature):
    """Before: 1 draw per output and the law P itself (5e-20 < T <= 1e-19), an OverflowError
    (T = 1e-310), or O(1/T) work. Now: a clear DrawBudgetExceeded before any draw."""
    with deadline(20), pytest.raises(it.DrawBudgetExceeded, match="at least") as info:
        it.temperature_sample(categorical_draw(PEAKED), temperature, method="exact", generator=0)
    assert info.value.stats["draws"] == 0
    assert "batch" in str(info.value)


def test_exact_at_small_t_with_a_budget_samples_soundly():
    """T = 0.01 (s = 100): a planned tree, at most ~1000 draws per output on the peaked law; the
    target is the mode with probability 1 - 6e-23."""
    res = it.temperature_sample(
        categorical_draw(PEAKED), 0.01, method="exact", num_outputs=200, generator=1
    )
    assert res.method == "exact" and "*" in res.plan
    assert bool((res.samples == 0).all())
    assert res.draws / 200 < 5_000


@pytest.mark.parametrize("temperature", TINY)
def test_auto_at_tiny_t_picks_the_pool_mode_quickly(temperature):
    draw = categorical_draw(PEAKED)
    with deadline(20):
        res = it.temperature_sample(draw, temperature, num_outputs=50, generator=2)
    assert res.method == "batch" and "1/T" in res.reason
    assert res.draws == 200 * 50  # no pilot, no exact draws: one batch per output
    # N = 200 draws from PEAKED: the mode (0) is the most frequent outcome of almost every pool
    assert float((res.samples == 0).double().mean()) > 0.95


@pytest.mark.parametrize("temperature", [1e-8, 1e-19, 1e-310])
def test_expected_exact_draws_at_tiny_t_is_immediate(temperature):
    """No O(1/T) loop: the flat formula is in closed form, the planner halves 1/T."""
    with deadline(20):
        flat = it.expected_exact_draws(ZIPF, temperature, plan="flat")
        best = it.expected_exact_draws(ZIPF, temperature)
    assert flat == float("inf")
    if temperature >= 1e-8:
        assert 1e8 <= best < float("inf")  # at least 1/T draws per output, finite
    else:
        assert best >= 1e19


def test_pilot_estimate_at_tiny_t_is_immediate():
    keys = categorical_draw(ZIPF)(200, torch.Generator().manual_seed(0))[None, :, None]
    counts, _ = it.core.group_counts(keys)
    with deadline(20):
        est = it.core.estimate_exact_draws(counts, 1e-8)
    assert float(est[0]) >= 1e8
