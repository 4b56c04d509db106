"""The batch rule's accuracy: the true-TV helper (known laws) and the estimator (counts only)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import PEAKED, tempered
from hypothesis import given, settings
from hypothesis import strategies as st

from implicit_temperature.core import batch_law
from implicit_temperature.core.accuracy import (
    compact,
    estimate_batch_tv,
    fingerprint,
    smoothed_law,
    student_t_quantile,
    upper_bound,
)
from implicit_temperature.core.batch import selection_probabilities
from implicit_temperature.core.batch_law import batch_tv, batch_tv_against
from implicit_temperature.core.grouping import group_counts
from implicit_temperature.demos.law_suite import flat_head, suite


def exact_batch_law(p: torch.Tensor, temperature: float, n: int) -> torch.Tensor:
    """Q_N by enumerating every pool composition (small K and N only)."""
    k = p.numel()
    q = torch.zeros(k, dtype=torch.float64)
    for comp in itertools.product(range(n + 1), repeat=k):
        if sum(comp) != n:
            continue
        log_prob = math.lgamma(n + 1) + sum(
            c * math.log(float(pi)) - math.lgamma(c + 1) for c, pi in zip(comp, p, strict=True)
        )
        keys = torch.tensor([i for i, c in enumerate(comp) for _ in range(c)]).unsqueeze(0)
        sel = selection_probabilities(keys, temperature)[0]
        q.scatter_add_(0, keys[0], sel * math.exp(log_prob))
    return q


@pytest.mark.parametrize("temperature", [0.5, 0.25])
def test_batch_tv_matches_exact_enumeration(temperature):
    # 4 outcomes, pools of 12: the output law is computable exactly; the simulation (4096 pools)
    # must agree within 0.01 (its Monte Carlo error is a few 1e-3 here)
    p = PEAKED
    truth = 0.5 * float(
        (exact_batch_law(p, temperature, 12) - tempered(p, temperature)).abs().sum()
    )
    sim = batch_tv(p, temperature, 12, pools=4096, generator=0)
    assert truth > 0.01  # the rule is visibly biased at N = 12
    assert sim.tv == pytest.approx(truth, abs=0.01)
    assert sim.noise < 0.01


def test_batch_tv_is_zero_for_a_uniform_law():
    # every outcome is exchangeable: the rule returns P_T = uniform exactly, whatever N and T
    p = torch.full((300,), 1 / 300, dtype=torch.float64)
    assert batch_tv(p, 0.1, 50, pools=256).tv < 1e-9


def test_batch_tv_shrinks_with_n():
    p = flat_head()
    small, large = batch_tv(p, 0.25, 50, pools=1024), batch_tv(p, 0.25, 2000, pools=256)
    assert small.tv > 0.05 > 0.02 > large.tv  # 0.07 at N = 50 (N = 200: 0.025)


def test_batch_tv_error_shrinks_like_one_over_root_pools():
    # error = half the sum of the classes' standard errors: 16x the pools, ~1/4 the error
    p = flat_head()
    few, many = batch_tv(p, 0.25, 100, pools=512), batch_tv(p, 0.25, 100, pools=8192)
    assert 0 < many.error < few.error
    assert few.error / many.error == pytest.approx(4.0, rel=0.25)


@pytest.mark.parametrize("temperature", [0.5, 0.25])
def test_batch_tv_against_a_threshold_runs_until_it_can_tell(temperature):
    # PEAKED, pools of 12: the exact output law is known (enumeration). Judged against a
    # threshold 5x the truth, the first 512 pools decide; against the truth itself (a tie by
    # construction) the pools double until the error is below threshold / 8, and the TV is
    # then within 2 errors of the truth. A pool cap is honoured and stated.
    truth = 0.5 * float(
        (exact_batch_law(PEAKED, temperature, 12) - tempered(PEAKED, temperature)).abs().sum()
    )
    far = batch_tv_against(PEAKED, temperature, 12, 5 * truth)
    assert far.pools == batch_law.DECIDE_START_POOLS and far.tv < 5 * truth - 4 * far.error
    tie = batch_tv_against(PEAKED, temperature, 12, truth)
    assert tie.pools >= batch_law.TRUSTED_POOLS
    assert tie.error <= truth / batch_law.DECIDE_PRECISION or tie.pools == 16_384
    assert abs(tie.tv - truth) <= 2 * tie.error
    capped = batch_tv_against(PEAKED, temperature, 12, truth, max_pools=1024)
    assert capped.pools == 1024 and capped.error > tie.error


def test_batch_tv_against_is_reproducible_and_seeded():
    p = flat_head()
    a = batch_tv_against(p, 0.25, 141, 0.02, estimator="jackknife")
    assert a == batch_tv_against(p, 0.25, 141, 0.02, estimator="jackknife")
    assert a != batch_tv_against(p, 0.25, 141, 0.02, estimator="jackknife", generator=10**6)


@given(st.lists(st.integers(0, 40), min_size=1, max_size=120))
@settings(max_examples=60, deadline=None)
def test_fingerprint_and_plugin_law_are_consistent(labels):
    keys = torch.tensor(labels).view(1, -1, 1)
    counts = group_counts(keys)[0]
    f = fingerprint(counts)
    c = torch.arange(f.shape[1], dtype=torch.float64)
    assert float((f * c).sum()) == pytest.approx(len(labels))  # every draw counted once
    assert float(f[0, 1:].sum()) == pytest.approx(len(set(labels)))  # one per distinct outcome
    law = compact(smoothed_law(f))
    assert torch.all(law.mass >= 0) and float(law.mass.sum()) == pytest.approx(1.0)
    assert torch.all(law.atoms >= 1)


def _observed_counts(p: torch.Tensor, m: int, b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    keys = torch.multinomial(p, m * b, replacement=True, generator=g).view(b, m, 1)
    return group_counts(keys)[0]


def test_all_distinct_sample_is_unknown():
    counts = torch.ones(2, 200, dtype=torch.long)  # 200 draws, no repeat: no information
    est = estimate_batch_tv(counts, 200, 2.0, generator=torch.Generator().manual_seed(0))
    assert not est.known.any()
    assert torch.isnan(est.estimate).all() and torch.all(est.upper == 1.0)


def test_estimator_tracks_the_truth_on_known_laws():
    # spread flat-head at T = 0.1 (truth ~0.24) and peaked-4 at T = 0.5 (truth ~0.002); each of
    # 8 problems sees 2,000 draws. The estimate is random through the sample (the head's shares
    # 0.06 vs 0.05 are seen with ~10% noise, and at s = 10 that ratio matters): at least 6 of 8
    # estimates within a factor 2 of the truth, and the bound above the truth as often; below
    # 0.02 everywhere where the truth is ~0
    g = torch.Generator().manual_seed(1)
    spread = estimate_batch_tv(_observed_counts(flat_head(), 2000, 8, 0), 200, 10.0, generator=g)
    truth = batch_tv(flat_head(), 0.1, 200, pools=2048).tv
    assert torch.all(spread.known)
    ratio = spread.estimate / truth
    assert int(((ratio > 0.5) & (ratio < 2.0)).sum()) >= 6, (spread.estimate, truth)
    assert int((spread.upper >= truth).sum()) >= 6, (spread.upper, truth)
    assert torch.all(spread.upper >= spread.estimate)
    peaked = estimate_batch_tv(_observed_counts(PEAKED, 2000, 8, 1), 200, 2.0, generator=g)
    assert torch.all(peaked.estimate < 0.02)
    assert torch.all(peaked.n_pmax > 2.0)  # N p_max = 100 >> s: the easy regime


def test_estimator_is_vectorised_over_problems():
    laws = suite()
    counts = torch.cat(
        [_observed_counts(laws[0].probs, 1000, 1, 2), _observed_counts(laws[6].probs, 1000, 1, 3)]
    )
    est = estimate_batch_tv(counts, 200, 4.0, generator=torch.Generator().manual_seed(0))
    assert est.estimate.shape == (2,) and est.upper.shape == (2,)
    # the peaked law's error is small, the spread law's (truth ~0.14) is not
    assert float(est.estimate[0]) < 0.03 < float(est.estimate[1])


# spread settings of the suite with truth well above 0.02 (binomial: 0.14, 0.14, 0.24, 0.53,
# 0.18, 0.57; jackknife: 0.08, 0.08, 0.24, 0.53, 0.16, 0.57): the result path's estimate from
# 10 outputs' pools (M = 10 N)
SPREAD_SETTINGS = (
    ("dirichlet-2000 (0.1)", 0.25, 200),
    ("dirichlet-5000 (0.05)", 0.25, 200),
    ("flat-head", 0.1, 200),
    ("tokens 16^4", 0.25, 200),
    ("zipf-5000 (1.0)", 0.25, 50),
    ("dirichlet-2000 (0.1)", 0.1, 200),
)


@pytest.mark.parametrize("estimator", ["binomial", "jackknife"])
def test_estimate_is_within_2x_and_bound_covers_on_spread_laws(estimator):
    # 6 settings x 8 independent problems = 48 estimates, with the simulation sizes a batch
    # result uses. Measured (these seeds): binomial 47/48 within 2x and 44/48 covered,
    # jackknife 46/48 and 44/48. Asserted: at least 42/48 (87.5%) of each. The estimator before
    # the simulation-noise correction (32 pools, |q - t| summed) overstated the jackknifed rule's
    # error on the Dirichlet laws ~2.5x and was within 2x in 36/48 here.
    from implicit_temperature.core.tolerance import RESULT_POOLS, RESULT_REPLICATES

    laws = {law.name: law for law in suite()}
    g = torch.Generator().manual_seed(16)
    within = covered = total = 0
    for i, (name, t, n) in enumerate(SPREAD_SETTINGS):
        p = laws[name].probs
        truth = batch_tv(p, t, n, pools=4096, generator=i, estimator=estimator).tv
        assert truth > 0.05  # the settings are where the rule is visibly wrong
        counts = _observed_counts(p, 10 * n, 8, 100 + i)
        est = estimate_batch_tv(
            counts,
            n,
            1.0 / t,
            pools=RESULT_POOLS,
            replicates=RESULT_REPLICATES,
            generator=g,
            estimator=estimator,
        )
        assert torch.all(est.known)
        ratio = est.estimate / truth
        within += int(((ratio >= 0.5) & (ratio <= 2.0)).sum())
        covered += int((est.upper >= truth).sum())
        total += counts.shape[0]
    assert within >= 42, (within, total)
    assert covered >= 42, (covered, total)


def test_student_t_quantile_matches_the_table():
    # one-sided quantiles of Student's t (standard tables)
    table = {
        (0.9, 4): 1.533,
        (0.9, 8): 1.397,
        (0.9, 16): 1.337,
        (0.95, 4): 2.132,
        (0.95, 30): 1.697,
    }
    for (conf, dof), value in table.items():
        assert student_t_quantile(conf, dof) == pytest.approx(value, rel=2e-3)


def test_upper_bound_is_estimate_plus_t_times_rms_deviation():
    est = torch.tensor([0.1, 0.3, 0.0], dtype=torch.float64)
    reps = torch.tensor(
        [[0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2], [0.9, 0.9, 0.9, 0.9]], dtype=torch.float64
    )
    up = upper_bound(est, reps, 0.9)
    t4 = student_t_quantile(0.9, 4)
    assert float(up[0]) == pytest.approx(0.1)  # replicates agree with the estimate: no width
    assert float(up[1]) == pytest.approx(0.3 + t4 * 0.1)  # biased low replicates widen it too
    assert float(up[2]) == 1.0  # never above 1


def test_simulation_noise_is_not_counted_as_error():
    # a law whose batch rule is exact (uniform over 50 outcomes: every outcome exchangeable, TV 0
    # for any N) given as 50 single-atom classes: with 32 simulated pools the raw |q - t| sum is
    # pure Monte Carlo noise (0.036 - 0.056 in these 4 worlds); the corrected TV removes a
    # quarter of it or more (measured: 0.026 - 0.044, 27% less on average)
    from implicit_temperature.core.accuracy import (
        _ClassLaw,
        _tempered_classes,
        plugin_tv,
        selection_law_and_error,
    )

    law = _ClassLaw(
        mass=torch.full((4, 50), 1 / 50, dtype=torch.float64),
        atoms=torch.ones(4, 50, dtype=torch.long),
    )
    q, err = selection_law_and_error(law, 4.0, 200, 32, torch.Generator().manual_seed(3))
    raw = 0.5 * (q - _tempered_classes(law, 4.0)).abs().sum(1)
    corrected = plugin_tv(law, 4.0, 200, 32, torch.Generator().manual_seed(3))
    assert torch.all(err > 0)
    assert torch.all(corrected < raw), (corrected, raw)
    assert float(corrected.mean()) <= 0.8 * float(raw.mean()), (corrected, raw)


def test_batch_tv_precise_doubles_until_the_relative_error_is_reached():
    # flat head, T = 0.25, N = 100: TV ~0.03. From 512 pools the error (half the sum of the
    # classes' standard errors) is above 5% of the TV; the pools double until it is not, and the
    # TV is then within 3 errors of a 4x larger independent simulation. A TV clearly below a
    # floor stops at once; a draw cap is honoured.
    p = flat_head()
    got = batch_law.batch_tv_precise(p, 0.25, 100, precision=0.05, start_pools=512)
    assert got.pools > 512 and got.error <= 0.05 * got.tv
    ref = batch_tv(p, 0.25, 100, pools=4 * got.pools, generator=10**6)
    assert abs(got.tv - ref.tv) <= 3 * (got.error + ref.error)
    below = batch_law.batch_tv_precise(p, 0.25, 100, precision=1e-6, floor=0.5, start_pools=512)
    assert below.pools == 512
    capped = batch_law.batch_tv_precise(p, 0.25, 100, precision=1e-6, max_draws=100 * 2048)
    assert capped.pools == 2048


@pytest.mark.parametrize("name", ["dirichlet-5000 (0.05)", "flat-head"])
def test_sparse_and_dense_class_moments_agree(name):
    # the per-class pool sums: sparse (segment sums) for the Dirichlet law's ~3,000 classes,
    # dense for the flat head's few, against a direct (pools, classes) table, to rounding
    from implicit_temperature.core import accuracy

    law = batch_law._classes({x.name: x for x in suite()}[name].probs, 0.01)
    width = law.mass.shape[1]
    assert (width > 30) == (name != "flat-head")  # which path each law takes
    g = torch.Generator().manual_seed(4)
    cls = torch.multinomial(law.mass[0].float(), 2 * 64 * 30, replacement=True, generator=g)
    cls = cls.view(2 * 64, 30)
    a, b = torch.rand(2, 2 * 64, 30, dtype=torch.float64, generator=g)
    got = accuracy._class_moments(cls, a, b, 2, 64, width)
    ref = torch.zeros(2, 2 * 64, width, dtype=torch.float64)
    ref[0].scatter_add_(1, cls, a)
    ref[1].scatter_add_(1, cls, b)
    x, y = ref.view(2, 2, 64, width)
    expect = torch.stack([x.sum(1), y.sum(1), (x * x).sum(1), (y * y).sum(1), (x * y).sum(1)])
    assert torch.allclose(got, expect, rtol=1e-12, atol=1e-12)
