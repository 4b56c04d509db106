"""method="auto": a small pilot plans the exact method; exact if its cost fits, else batch; the
choice is made before exact runs and then kept."""

from __future__ import annotations

import pytest
import torch
from conftest import ALPHA, PEAKED, ZIPF, categorical_draw, chi_square_pvalue, tempered

import implicit_temperature as it
from implicit_temperature.core import estimate_exact_draws, group_counts

SPREAD = torch.full((5000,), 1 / 5000, dtype=torch.float64)


def test_pilot_estimate_is_close_to_formula():
    draw = categorical_draw(PEAKED)
    keys = draw(2000, torch.Generator().manual_seed(0))[None, :, None]
    counts, _ = group_counts(keys)
    for t in (0.8, 0.5, 0.37):
        est = float(estimate_exact_draws(counts, t, plan="flat")[0])
        true = it.expected_exact_draws(PEAKED, t, plan="flat")
        assert abs(est / true - 1) < 0.1, (t, est, true)


def test_auto_is_the_default_and_works_at_any_temperature():
    draw = categorical_draw(PEAKED)
    for t in (0.1, 0.5, 1.0, 1.5, 3.0):
        res = it.temperature_sample(draw, t, num_outputs=3, generator=0)
        assert res.requested_method == "auto" and res.samples.shape == (3,)
        assert res.method == ("exact" if t <= 1 else "batch")


def test_auto_picks_exact_when_affordable_and_is_exact():
    res = it.temperature_sample(
        categorical_draw(PEAKED), 0.5, method="auto", num_outputs=4000, generator=1
    )
    assert res.method == "exact" and res.requested_method == "auto"
    assert "plan" in res.reason and res.expected_draws > 0
    assert chi_square_pvalue(res.samples, tempered(PEAKED, 0.5)) > ALPHA


def test_auto_uses_trees_at_low_temperature():
    """Zipf at T = 0.1: flat rounds cost 5.6e5 draws per output, a tree ~211: auto now picks the
    exact method and plans a tree, and the outputs have the tempered law. (At the default
    tolerance a batch N ~100 is cheaper and meets it, and auto takes it; at 1e-4 no batch N
    below exact's cost does.)"""
    res = it.temperature_sample(
        categorical_draw(ZIPF), 0.1, num_outputs=2000, generator=3, tolerance=1e-4
    )
    assert res.method == "exact" and ("+" in res.plan or "*" in res.plan)
    assert res.draws / 2000 < 400
    assert chi_square_pvalue(res.samples, tempered(ZIPF, 0.1)) > ALPHA


def test_auto_picks_batch_when_exact_is_too_costly():
    res = it.temperature_sample(
        categorical_draw(SPREAD), 0.2, method="auto", num_outputs=10, generator=1
    )
    assert res.method == "batch"
    pilot = res.pilot_draws
    assert 0 < pilot <= 200
    assert res.draws == pilot + 200 * 10  # pilot + one batch of N per output


def test_auto_overrun_raises_and_never_switches_to_batch():
    """A law whose pilot underestimates the exact cost (one common outcome and 50 rare ones: a
    16-draw pilot misses most rare ones), T = 0.95, a budget auto thinks is ample. Every call
    either returns exact outputs within max_draws or raises DrawBudgetExceeded; none falls back
    to batch (which would keep only the short, common-outcome runs: a biased law)."""
    p = torch.tensor([0.5] + [0.01] * 50, dtype=torch.float64)
    raised = returned = 0
    for seed in range(40):
        try:
            res = it.temperature_sample(
                categorical_draw(p), 0.95, num_samples=20, max_draws=60, generator=seed
            )
        except it.DrawBudgetExceeded as exc:
            raised += 1
            assert "committed" in str(exc) and exc.stats["draws"] <= 60
        else:
            returned += 1
            assert res.method == "exact" and res.draws <= 60
    assert raised > 0 and returned > 0, (raised, returned)


def test_pilot_sized_budget_is_honoured():
    """A constant law, N = 100, max_draws = 250: the pilot is charged once, exact fits."""
    draw = categorical_draw(torch.tensor([1.0], dtype=torch.float64))
    res = it.temperature_sample(
        draw, 0.5, num_samples=100, max_draws=250, num_outputs=20, generator=0
    )
    assert res.method == "exact" and res.draws <= 250
    assert res.draws == res.pilot_draws + 2 * 20  # 2 draws per output, no waste


def test_auto_respects_max_draws():
    draw = categorical_draw(PEAKED)
    cheap = it.temperature_sample(draw, 0.25, num_outputs=10, generator=2)
    assert cheap.method == "exact"
    # exact needs ~200 draws; with 300 it would use more than AUTO_EXACT_SHARE of the budget
    tight = it.temperature_sample(
        draw, 0.25, num_outputs=10, num_samples=20, max_draws=300, generator=2
    )
    assert tight.method == "batch" and "max_draws" in tight.reason
    assert tight.draws <= 300


def test_auto_never_exceeds_max_draws():
    """Whatever auto picks, the draws stay within max_draws, or it says why."""
    draw = categorical_draw(ZIPF)
    for budget in (1_000, 2_500, 20_000):
        try:
            res = it.temperature_sample(
                draw, 0.25, method="auto", num_outputs=5, max_draws=budget, generator=0
            )
        except it.DrawBudgetExceeded as exc:
            assert "max_draws" in str(exc) and exc.stats["draws"] <= budget
        else:
            assert res.draws <= budget, (budget, res.method, res.draws, res.reason)
    with pytest.raises(it.DrawBudgetExceeded, match="neither method fits"):
        it.temperature_sample(
            categorical_draw(SPREAD), 0.1, method="auto", num_outputs=5, max_draws=900, generator=0
        )


def test_auto_above_one_is_batch_and_at_one_is_exact():
    draw = categorical_draw(PEAKED)
    hot = it.temperature_sample(draw, 2.0, method="auto", num_outputs=5, generator=0)
    assert hot.method == "batch" and "T = 1" in hot.reason
    one = it.temperature_sample(draw, 1.0, method="auto", num_outputs=5, generator=0)
    assert one.method == "exact" and one.draws == 5


def test_auto_at_one_with_batched_problems_counts_every_problem():
    laws = torch.stack([PEAKED, PEAKED.flip(0), torch.full((4,), 0.25, dtype=torch.float64)])

    def draw(m, generator=None):
        return torch.multinomial(laws.float(), m, replacement=True, generator=generator)

    res = it.temperature_sample(draw, 1.0, method="auto", batched=True, num_outputs=4, generator=0)
    assert res.method == "exact" and res.draws == 12 and res.expected_draws == 12.0


def test_exact_refuses_early_when_the_plan_is_far_beyond_the_budget():
    """A spread law at T = 0.05: the plan needs far more than max_draws, so exact refuses after
    its pilot instead of running until the budget is gone."""
    with pytest.raises(it.DrawBudgetExceeded, match="far beyond") as info:
        it.temperature_sample(
            categorical_draw(SPREAD), 0.05, method="exact", max_draws=100_000, generator=0
        )
    assert info.value.stats["draws"] <= 200  # the pilot only


class _CategoricalAdapter:
    """A minimal adapter instance: draws outcome ids of PEAKED, keys are the ids."""

    batched = False

    def draw(self, n, generator=None):
        return torch.multinomial(PEAKED.float(), n, replacement=True, generator=generator)

    def quantize(self, samples):
        return samples


def test_sampler_defaults_to_auto_and_takes_a_plan():
    """TemperatureSampler.sample(1.5) used to raise (exact was its default); auto works at any
    T, and plan= reaches the exact method."""
    sampler = it.TemperatureSampler(None, adapter=_CategoricalAdapter())
    hot = sampler.sample(1.5, num_outputs=3, generator=0)
    assert hot.method == "batch" and hot.requested_method == "auto"
    cold = sampler.sample(0.2, method="exact", plan="2+3", num_outputs=2000, generator=0)
    assert cold.plan == "2+3"
    assert chi_square_pvalue(cold.samples, tempered(PEAKED, 0.2)) > ALPHA


def test_auto_with_many_problems_keeps_pilot_and_run_within_max_draws():
    """B = 50 problems (a draw that takes active=, as the CALM adapter's): the pilot's share of
    max_draws is per problem once B is known, and the committed run stays within the budget."""
    laws = torch.stack([PEAKED] * 50)

    def draw(m, generator=None, active=None):
        rows = laws if active is None else laws[active]
        return torch.multinomial(rows.float(), m, replacement=True, generator=generator)

    res = it.temperature_sample(draw, 0.25, batched=True, max_draws=5000, generator=0)
    assert res.method == "exact" and res.draws <= 5000
    assert res.pilot_draws <= 0.25 * 5000
    with pytest.raises(it.DrawBudgetExceeded) as info:
        it.temperature_sample(draw, 0.25, batched=True, max_draws=2000, generator=0)
    assert info.value.stats["draws"] <= 2000
