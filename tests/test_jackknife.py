"""The jackknifed batch rule (estimator="jackknife"): its closed form, its fallbacks, its accuracy.

* the closed form equals the jackknife computed by brute force over the N leave-one-out pools
  (property-based, random pools and exponents, to 1e-9);
* where the correction is undefined (cascade, an outcome that would vanish) it is the plain rule;
* the sampler picks each sample with the computed probability (chi-square, fixed seed);
* on a known spread law (the flat head, T = 0.1, N = 3200) its true TV to P^(1/T) is below 0.025
  where the plain rule's is above 0.04 (true TV by simulated pools; the
  Monte Carlo noise is taken off the margin);
* its error estimate (the accuracy plug-in with estimator="jackknife") bounds the truth.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import ALPHA, chi_square_pvalue
from hypothesis import given, settings
from hypothesis import strategies as st

import implicit_temperature as it
from implicit_temperature.core.accuracy import estimate_batch_tv
from implicit_temperature.core.batch_law import batch_tv
from implicit_temperature.core.grouping import group_counts
from implicit_temperature.demos.law_suite import flat_head


def _outcome_law(keys: torch.Tensor, t: float, k: int, estimator: str) -> torch.Tensor:
    probs = it.selection_probabilities(keys.unsqueeze(0), t, estimator=estimator)[0]
    return torch.zeros(k, dtype=torch.float64).scatter_add_(0, keys, probs)


def _brute_jackknife(keys: torch.Tensor, t: float, k: int) -> torch.Tensor:
    n = keys.numel()
    full = _outcome_law(keys, t, k, "binomial")
    loo = sum(
        _outcome_law(torch.cat([keys[:i], keys[i + 1 :]]), t, k, "binomial") for i in range(n)
    )
    q = (n * full - (n - 1) * loo / n).clamp(min=0.0)
    return q / q.sum()


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(0, 4), min_size=3, max_size=14),
    s=st.sampled_from([0.4, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0]),
)
def test_closed_form_equals_brute_force_leave_one_out(keys, s):
    k = torch.tensor(keys)
    t = 1.0 / s
    counts, _ = group_counts(k.view(1, -1, 1))
    c_max = int(counts.max())
    mine = _outcome_law(k, t, 5, "jackknife")
    if math.floor(s) > c_max:  # the cascade steps down: the plain rule by definition
        assert torch.allclose(mine, _outcome_law(k, t, 5, "binomial"), atol=1e-12)
        return
    # the correction is skipped when removing one sample leaves nothing that qualifies
    c = counts[0].double()
    qualifies = c - s + 1 > 0
    vanishing = (qualifies.sum() == (c == c_max).sum()) and not bool((c - 1 - s + 1 > 0).any())
    brute = _outcome_law(k, t, 5, "binomial") if vanishing else _brute_jackknife(k, t, 5)
    assert torch.allclose(mine, brute, atol=1e-9), (mine, brute)


def test_cascade_pools_fall_back_to_the_plain_rule():
    keys = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 1]])  # c_max = 2 < 1/T = 4: the cascade steps
    plain = it.selection_probabilities(keys, 0.25)
    jack = it.selection_probabilities(keys, 0.25, estimator="jackknife")
    assert torch.equal(plain, jack)


def test_sampler_picks_each_sample_with_the_computed_probability():
    pool = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5])
    probs = it.selection_probabilities(pool.view(1, -1), 0.4, estimator="jackknife")[0]
    assert not torch.allclose(probs, it.selection_probabilities(pool.view(1, -1), 0.4)[0])
    reps = 20_000
    keys = pool.expand(reps, -1)
    index = it.select_from_batch(keys, 0.4, generator=7, estimator="jackknife")
    assert chi_square_pvalue(index, probs) > ALPHA


def test_temperature_sample_accepts_the_jackknife():
    draw = lambda m, generator=None: torch.multinomial(  # noqa: E731
        flat_head(), m, replacement=True, generator=generator
    )
    res = it.temperature_sample(
        draw, 0.25, method="batch", estimator="jackknife", num_outputs=3, generator=1
    )
    assert res.method == "batch" and res.keys.shape == (3,)
    # the result's accuracy record is estimated for the jackknifed rule, not left unknown
    assert 0.0 <= res.estimated_tv < 1.0 and "plug-in" in res.accuracy.how


def test_jackknife_is_far_more_accurate_on_a_spread_law():
    p = flat_head()
    plain = batch_tv(p, 0.1, 3200, pools=1024, generator=3)
    jack = batch_tv(p, 0.1, 3200, pools=2048, generator=4, estimator="jackknife")
    assert plain.noise < 0.008 and jack.noise < 0.008  # Monte Carlo scale of each TV
    assert plain.tv - plain.noise > 0.04
    assert jack.tv + jack.noise < 0.025


@pytest.mark.parametrize("n", [800, 3200])
def test_jackknife_error_estimate_bounds_the_truth(n):
    p = flat_head()
    truth = batch_tv(p, 0.1, n, pools=1024, generator=5, estimator="jackknife").tv
    assert (truth > 0.02) == (n == 800)  # one setting on each side of 0.02
    g = torch.Generator().manual_seed(6)
    keys = torch.multinomial(p, 4 * n, replacement=True, generator=g).view(4, n, 1)
    counts, _ = group_counts(keys)
    est = estimate_batch_tv(
        counts, n, 10.0, pools=32, replicates=8, generator=g, estimator="jackknife"
    )
    assert bool(est.known.all())
    assert float((est.upper >= truth).double().mean()) >= 0.75
    if truth > 0.02:  # where the truth is small the estimate only has to bound it
        assert 0.4 * truth <= float(est.estimate.mean()) <= 2.5 * truth
