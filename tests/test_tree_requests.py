"""Pair requests of a collision tree follow the run's own counts, so a wrong pilot costs nothing.

The law is uniform over K = 20 outcomes at T = 0.25 with the tree 2*2: the node keeps a pair with
probability rho = S(4) / S(2)^2 = 1/K exactly, each leaf output costs (1 + S(1)) / S(2) = 2K
draws, so Q outputs need Q / rho pairs on average (standard deviation sqrt(Q (1 - rho)) / rho,
7% of the mean at Q = 200) and 4 K^2 = 1600 draws each. A pilot that is wrong by a factor of 100
either way (``leaf_rates``, the only planned rate a tree still reads) must not move the pairs
tried beyond 1.3 Q / rho nor the draws beyond 1.3 times the expectation; the outputs stay exact
(chi-square against P^4 / Z).
"""

from __future__ import annotations

import pytest
import torch
from conftest import ALPHA, chi_square_pvalue, tempered

import implicit_temperature as it
from implicit_temperature.core.drawing import DrawSource
from implicit_temperature.core.plan import parse_tree
from implicit_temperature.core.tree import run_tree

K = 20
UNIFORM = torch.full((K,), 1.0 / K, dtype=torch.float64)
RHO = 1.0 / K


def _source(seed: int, probs: torch.Tensor = UNIFORM) -> DrawSource:
    def draw(m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(probs, m, replacement=True, generator=generator)

    return DrawSource(draw, None, batched=False, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("factor", [0.01, 1.0, 100.0])
def test_pair_requests_stay_within_budget_when_the_pilot_is_misleading(factor):
    q = 200
    true_s2 = 1.0 / K  # S(2) of the uniform law: the leaf's acceptance rate per round
    leaf_rates = {2.0: torch.tensor([factor * true_s2], dtype=torch.float64)}
    source = _source(11)
    out, run = run_tree(source, parse_tree("2*2"), q, max_draws=None, leaf_rates=leaf_rates)
    assert out.keys.shape[1] == q
    assert run.pairs <= 1.3 * q / RHO, run.pairs
    assert run.kept - q <= 0.1 * q  # kept outputs left unused at the end
    expected = it.expected_exact_draws(UNIFORM, 0.25, plan="2*2") * q
    assert abs(expected - 4 * K * K * q) < 1e-6 * expected
    assert source.draws <= 1.3 * expected, source.draws / expected


def test_outputs_exact_with_a_misleading_pilot():
    zipf = torch.arange(1, 31, dtype=torch.float64) ** -1.1
    zipf = zipf / zipf.sum()
    leaf_rates = {2.0: torch.tensor([1e-4], dtype=torch.float64)}  # far too low
    out, _ = run_tree(
        _source(12, zipf), parse_tree("2*2"), 4000, max_draws=None, leaf_rates=leaf_rates
    )
    assert chi_square_pvalue(out.keys[0, :, 0], tempered(zipf, 0.25)) > ALPHA


def test_auto_stays_near_the_best_trees_expectation():
    q = 200
    res = it.temperature_sample(
        lambda m, generator=None: torch.multinomial(UNIFORM, m, True, generator=generator),
        0.25,
        method="exact",
        num_outputs=q,
        generator=13,
    )
    best = it.expected_exact_draws(UNIFORM, 0.25) * q
    assert (res.draws - res.pilot_draws) <= 1.3 * best, (res.draws, best, res.plan)
