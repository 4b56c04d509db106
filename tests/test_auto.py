"""method="auto": a pilot batch estimates the exact cost; exact if it fits, else batch."""

from __future__ import annotations

import pytest
import torch
from conftest import ALPHA, PEAKED, ZIPF, categorical_draw, chi_square_pvalue, tempered

import implicit_temperature as it
from implicit_temperature.core import estimate_exact_draws, group_counts


def test_pilot_estimate_is_close_to_formula():
    draw = categorical_draw(PEAKED)
    keys = draw(2000, torch.Generator().manual_seed(0))[None, :, None]
    counts, _ = group_counts(keys)
    for t in (0.8, 0.5, 0.37):
        est = float(estimate_exact_draws(counts, t)[0])
        true = it.expected_exact_draws(PEAKED, t)
        assert abs(est / true - 1) < 0.1, (t, est, true)


def test_auto_picks_exact_when_affordable_and_is_exact():
    res = it.temperature_sample(categorical_draw(PEAKED), 0.5, method="auto", num_outputs=4000,
                                generator=1)
    assert res.method == "exact" and res.requested_method == "auto"
    assert "budget" in res.reason and res.expected_draws > 0
    assert chi_square_pvalue(res.samples, tempered(PEAKED, 0.5)) > ALPHA


def test_auto_picks_batch_when_exact_is_too_costly():
    res = it.temperature_sample(categorical_draw(ZIPF), 0.1, method="auto", num_outputs=10,
                                generator=1)
    assert res.method == "batch"
    assert res.draws == 200 + 200 * 10  # pilot + one batch of N per output


def test_auto_respects_max_draws():
    draw = categorical_draw(PEAKED)
    cheap = it.temperature_sample(draw, 0.25, method="auto", num_outputs=10, generator=2)
    assert cheap.method == "exact"  # ~354 draws expected, default budget 20000
    # 2300 draws: pilot 200 + batch 2000 fit, and exact (~354) does not fit beside the batch
    # reserve (2300 - 200 - 2000 = 100)
    tight = it.temperature_sample(draw, 0.25, method="auto", num_outputs=10, max_draws=2300,
                                  generator=2)
    assert tight.method == "batch" and "budget 100" in tight.reason
    assert tight.draws == 2200


def test_auto_above_one_is_batch_and_at_one_is_exact():
    draw = categorical_draw(PEAKED)
    hot = it.temperature_sample(draw, 2.0, method="auto", num_outputs=5, generator=0)
    assert hot.method == "batch" and "T = 1" in hot.reason
    one = it.temperature_sample(draw, 1.0, method="auto", num_outputs=5, generator=0)
    assert one.method == "exact" and one.draws == 5


def test_auto_never_exceeds_max_draws():
    """Whatever auto picks (or falls back to), the draws stay within max_draws, or it says why."""
    draw = categorical_draw(ZIPF)
    for budget in (1_000, 2_500, 20_000):
        try:
            res = it.temperature_sample(draw, 0.25, method="auto", num_outputs=5, max_draws=budget,
                                        generator=0)
        except it.DrawBudgetExceeded as exc:
            assert "max_draws" in str(exc) and exc.stats["draws"] <= budget
        else:
            assert res.draws <= budget, (budget, res.method, res.draws, res.reason)
    with pytest.raises(it.DrawBudgetExceeded, match="neither method fits"):
        it.temperature_sample(draw, 0.1, method="auto", num_outputs=5, max_draws=1_000,
                              generator=0)


def test_auto_at_one_with_batched_problems_counts_every_problem():
    laws = torch.stack([PEAKED, PEAKED.flip(0), torch.full((4,), 0.25, dtype=torch.float64)])

    def draw(m, generator=None):
        return torch.multinomial(laws.float(), m, replacement=True, generator=generator)

    res = it.temperature_sample(draw, 1.0, method="auto", batched=True, num_outputs=4, generator=0)
    assert res.method == "exact" and res.draws == 12 and res.expected_draws == 12.0
