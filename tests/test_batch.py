"""The batch method: the published C(c, n) rule at T = 1/n, cascade, generalised binomial, TV."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import ALPHA, PEAKED, categorical_draw, chi_square_pvalue, tempered, total_variation

import implicit_temperature as it
from implicit_temperature.core import batch_selection, group_counts


def published_rule_probabilities(keys: list[int], n: int) -> list[float]:
    """The published CALM rule restated with math.comb: candidates with count >= n weighted by
    C(count, n), cascade n, n-1, ..., 1 until some outcome qualifies; a member of the chosen
    outcome uniformly. Returns the probability of choosing each position."""
    counts = {k: keys.count(k) for k in set(keys)}
    level = n
    while level > 1 and max(counts.values()) < level:
        level -= 1
    weights = {k: math.comb(c, level) for k, c in counts.items() if c >= level}
    total = sum(weights.values())
    return [weights.get(k, 0) / total / counts[k] for k in keys]


HAND_BUILT = [
    [0, 0, 0, 1, 1, 2, 3, 3, 3, 3],  # every level reachable
    [5, 5, 7, 7, 9, 11, 12, 5],  # needs the cascade at n = 4
    [1, 2, 3, 4, 5, 6],  # all distinct: cascade to level 1 (uniform)
    [4, 4, 4, 4, 4, 4],  # one outcome
]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("keys", HAND_BUILT)
def test_probabilities_equal_published_rule_at_inverse_integer_temperature(keys, n):
    expected = torch.tensor(published_rule_probabilities(keys, n), dtype=torch.float64)
    got = it.selection_probabilities(torch.tensor([keys]), 1.0 / n)[0]
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)


def test_cascade_level_is_reported():
    levels = []
    for row in HAND_BUILT[:3]:
        levels.append(float(batch_selection(torch.tensor([row]), 0.25, generator=0).level[0]))
    assert levels == [4.0, 3.0, 1.0]
    sel = batch_selection(torch.tensor([HAND_BUILT[1]]), 0.25, generator=0)
    assert int(sel.depth[0]) == 1


def test_empirical_selection_matches_probabilities():
    """Many independent selections of the same batch follow selection_probabilities (chi-square)."""
    row = torch.tensor(HAND_BUILT[0])
    keys = row.expand(50_000, -1)
    idx = it.select_from_batch(keys, 0.5, generator=4)
    probs = it.selection_probabilities(row[None], 0.5)[0]
    assert chi_square_pvalue(idx, probs) > ALPHA
    # members of one outcome are chosen uniformly: positions 0, 1, 2 share key 0
    counts = torch.bincount(idx, minlength=10)
    assert counts[3:5].sum() > 0 and counts[5] == 0  # key 2 (count 1 < 2) never qualifies at n=2


def test_generalised_binomial_at_fractional_temperature():
    """At s = 1/T = 2.7, weights are Gamma(c+1)/Gamma(c-s+1) over outcomes with c > s - 1."""
    keys = [0, 0, 0, 1, 1, 2]
    s = 2.7
    w = {0: math.gamma(4) / math.gamma(4 - s), 1: math.gamma(3) / math.gamma(3 - s)}
    total = sum(w.values())
    expected = torch.tensor(
        [w[0] / total / 3] * 3 + [w[1] / total / 2] * 2 + [0.0], dtype=torch.float64
    )
    got = it.selection_probabilities(torch.tensor([keys]), 1 / s)[0]
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-15)


def test_rows_of_keys_are_compared_exactly():
    keys = torch.tensor([[[1, 2], [1, 2], [1, 3], [2, 2]]])
    counts, group = group_counts(keys)
    assert counts.tolist() == [[2, 2, 1, 1]]
    assert group[0, 0] == group[0, 1] and len(set(group[0].tolist())) == 3
    probs = it.selection_probabilities(keys, 0.5)[0]
    torch.testing.assert_close(probs, torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64))


def test_select_from_batch_is_vectorised_over_problems_and_reproducible():
    g = torch.Generator().manual_seed(0)
    keys = torch.randint(0, 5, (64, 30, 4), generator=g)
    a = it.select_from_batch(keys, 0.37, generator=9)
    b = it.select_from_batch(keys, 0.37, generator=9)
    assert a.shape == (64,) and a.dtype == torch.long and torch.equal(a, b)
    probs = it.selection_probabilities(keys, 0.37)
    assert bool((probs.gather(1, a[:, None]) > 0).all())


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_batch_tv_shrinks_with_batch_size(temperature):
    """TV(batch law, P^(1/T)) at N = 200 is below N = 20's and below 0.02 (50k outputs each;
    the Monte-Carlo TV noise at 50k outputs on 4 outcomes is ~0.004)."""
    draw = categorical_draw(PEAKED)
    target = tempered(PEAKED, temperature)
    tv = {}
    for n in (20, 200):
        res = it.temperature_sample(
            draw, temperature, method="batch", num_samples=n, num_outputs=50_000, generator=n
        )
        assert res.draws == n * 50_000 and res.model_calls == 1
        tv[n] = total_variation(res.samples, target)
    assert tv[200] < tv[20]
    assert tv[200] < 0.02, tv


def test_batch_at_inverse_integer_temperature_matches_simulated_rule():
    """End to end at T = 1/3: the output law equals the published rule's law, estimated by
    applying published_rule_probabilities to independent batches."""
    draw = categorical_draw(PEAKED)
    g = torch.Generator().manual_seed(0)
    batches = draw(12 * 400, g).view(400, 12)
    rule = torch.zeros(4, dtype=torch.float64)
    for row in batches.tolist():
        for k, pr in zip(row, published_rule_probabilities(row, 3), strict=True):
            rule[k] += pr / 400
    probs = it.selection_probabilities(batches, 1 / 3)
    ours = torch.zeros(400, 4, dtype=torch.float64).scatter_add_(1, batches, probs).mean(0)
    torch.testing.assert_close(ours, rule, rtol=1e-10, atol=1e-12)


def test_share_pool_reuses_one_batch():
    res = it.temperature_sample(
        categorical_draw(PEAKED),
        0.5,
        method="batch",
        num_samples=50,
        num_outputs=10,
        share_pool=True,
        generator=0,
    )
    assert res.draws == 50 and res.samples.shape == (10,)


def test_cascade_level_in_result():
    # all-distinct outcomes: no 2-fold collision in N=4 draws of a 10^6-outcome uniform law
    with pytest.warns(it.TemperatureWarning, match="were distinct"):
        res = it.temperature_sample(
            lambda m: torch.randperm(10**6)[:m], 0.5, method="batch", num_samples=4, num_outputs=3
        )
    assert res.cascade_level.tolist() == [1.0, 1.0, 1.0]
    assert res.cascade_depth.tolist() == [1, 1, 1]


def test_selection_makes_no_data_dependent_host_read():
    """On the meta device tensors have shapes but no data: any .item(), .tolist(), boolean mask
    or data-dependent shape would raise. So the selection would not sync a CUDA stream either."""
    keys = torch.randint(0, 4, (8, 50, 3)).to("meta")
    for generator in (None, 3):
        sel = batch_selection(keys, 0.37, generator=generator)
        assert sel.index.device.type == "meta" and sel.index.shape == (8,)
        assert sel.level.shape == (8,) and sel.counts.shape == (8, 50)


def test_batch_outputs_in_chunks_keep_the_law_and_the_counts(monkeypatch):
    """Outputs cut into chunks (bounded memory): same draws, one call per chunk, same law."""
    from scipy.stats import chi2_contingency

    import implicit_temperature.core.api as api

    probs = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)

    def draw(m, generator=None):
        return torch.multinomial(probs, m, replacement=True, generator=generator)

    kw = dict(method="batch", num_samples=20, num_outputs=4000)
    whole = it.temperature_sample(draw, 0.5, generator=1, **kw)
    monkeypatch.setattr(api, "BATCH_CHUNK_DRAWS", 100)  # 5 outputs per call
    cut = it.temperature_sample(draw, 0.5, generator=2, **kw)
    assert whole.model_calls == 1 and cut.model_calls == 800
    assert cut.draws == whole.draws == 20 * 4000
    assert cut.keys.shape == (4000,) and cut.cascade_level.shape == (4000,)
    assert cut.diagnostics.distinct_keys.shape == (4000,)
    table = [torch.bincount(r.keys, minlength=4).tolist() for r in (whole, cut)]
    assert chi2_contingency(table).pvalue > 1e-3  # the two runs follow one law
    again = it.temperature_sample(draw, 0.5, generator=2, **kw)
    assert torch.equal(again.keys, cut.keys)  # deterministic for a seed
