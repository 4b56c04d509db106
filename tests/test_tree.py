"""Collision trees: exactness (chi-square at low T), batched problems with active=, independence
of the outputs, explicit plans, costs against the formula, budgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ALPHA, PEAKED, ZIPF, categorical_draw, chi_square_pvalue, tempered
from scipy import stats

import implicit_temperature as it
from implicit_temperature.core.cost import LawPowerSums, tree_cost
from implicit_temperature.core.plan import parse_tree

LAWS = {"peaked": PEAKED, "zipf": ZIPF}


@pytest.mark.parametrize("law_name", ["peaked", "zipf"])
@pytest.mark.parametrize("temperature", [0.3, 0.2, 0.1, 0.05])
def test_tree_matches_tempered_law(law_name, temperature):
    p = LAWS[law_name]
    res = it.temperature_sample(
        categorical_draw(p), temperature, method="exact", num_outputs=4000, generator=11
    )
    assert res.method == "exact" and res.samples.shape == (4000,)
    flat_cost = it.expected_exact_draws(p, temperature, plan="flat")
    if it.expected_exact_draws(p, temperature, plan="auto") < flat_cost / 1.5:
        # where a tree pays clearly, the pilot-planned run uses one (near T = 0.3 on the peaked
        # law the best tree saves only ~5%, and a pilot may rightly keep flat rounds)
        assert res.plan != it.core.plan.format_tree(it.core.plan.leaf(1 / temperature))
    pvalue = chi_square_pvalue(res.samples, tempered(p, temperature))
    assert pvalue > ALPHA, f"chi-square p={pvalue:.2e} at T={temperature}, plan {res.plan}"


def test_goodness_of_fit_detects_a_wrong_temperature():
    """The chi-square above has power: T = 0.2's outputs are rejected as T = 0.3 samples."""
    res = it.temperature_sample(
        categorical_draw(ZIPF), 0.2, method="exact", num_outputs=4000, generator=11
    )
    assert chi_square_pvalue(res.samples, tempered(ZIPF, 0.3)) < 1e-6


@pytest.mark.parametrize(
    "plan,temperature",
    [
        ("(2+2)+(3+3)", 0.1),
        ("2*(1.5+1.5)", 1 / 6),
        ("5/3+5/3", 0.3),
        ("2*2*2", 1 / 8),
        ("1+1.5", 0.4),
    ],
)
def test_explicit_plans_are_exact(plan, temperature):
    res = it.temperature_sample(
        categorical_draw(PEAKED),
        temperature,
        method="exact",
        plan=plan,
        num_outputs=3000,
        generator=5,
    )
    assert parse_tree(res.plan).s == pytest.approx(1 / temperature)
    assert res.pilot_draws == 0  # an explicit plan needs no pilot
    assert chi_square_pvalue(res.samples, tempered(PEAKED, temperature)) > ALPHA


def test_batched_problems_with_active_draws():
    """B = 1200 problems (three laws), one output each, T = 0.2 with the planned tree: finished
    problems are left out of draw calls (active=), and each law's outputs are P_T."""
    laws = torch.stack([PEAKED, PEAKED.flip(0), torch.tensor([0.7, 0.1, 0.1, 0.1]).double()] * 400)
    rows_drawn = []

    def draw(m, generator=None, active=None):
        rows = laws if active is None else laws[active]
        rows_drawn.append(rows.shape[0])
        return torch.multinomial(rows.float(), m, replacement=True, generator=generator)

    res = it.temperature_sample(draw, 0.2, method="exact", batched=True, num_outputs=1, generator=3)
    assert res.samples.shape == (1200, 1) and res.keys.shape == (1200, 1)
    assert "+" in res.plan or "*" in res.plan
    assert min(rows_drawn) < 1200, "problems that needed nothing were drawn for"
    for row in range(3):
        outcomes = res.samples[row::3].flatten()
        assert chi_square_pvalue(outcomes, tempered(laws[row], 0.2)) > ALPHA


def test_batched_problems_several_outputs_each():
    laws = torch.stack([PEAKED, torch.tensor([0.1, 0.2, 0.3, 0.4]).double()])

    def draw(m, generator=None):
        return torch.multinomial(laws.float(), m, replacement=True, generator=generator)

    res = it.temperature_sample(
        draw, 0.1, method="exact", batched=True, num_outputs=3000, generator=4
    )
    assert res.samples.shape == (2, 3000)
    for row, law in zip(res.samples, laws, strict=True):
        assert chi_square_pvalue(row, tempered(law, 0.1)) > ALPHA


def test_outputs_are_independent_and_output_one_has_the_law():
    """2000 problems, 3 outputs each, T = 0.2: output #1 alone has the tempered law (the order of
    outputs must not depend on their values), and outputs #1 and #2 are independent
    (chi-square test of independence on their contingency table)."""
    p = torch.tensor([0.45, 0.35, 0.2], dtype=torch.float64)
    b = 2000

    def draw(m, generator=None):
        return torch.multinomial(p.float(), b * m, replacement=True, generator=generator).view(b, m)

    res = it.temperature_sample(draw, 0.2, method="exact", batched=True, num_outputs=3, generator=8)
    target = tempered(p, 0.2)
    first, second = res.samples[:, 0], res.samples[:, 1]
    assert chi_square_pvalue(first, target) > ALPHA
    assert chi_square_pvalue(res.samples.flatten(), target) > ALPHA
    table = np.zeros((3, 3))
    np.add.at(table, (first.numpy(), second.numpy()), 1)
    assert stats.chi2_contingency(table).pvalue > ALPHA


def test_first_output_over_many_calls_has_the_pooled_law():
    """Independent calls with num_outputs=4: output #1 over the calls has the same law as all
    outputs pooled, and that law is P_T."""
    draw = categorical_draw(PEAKED)
    outs = torch.stack(
        [
            it.temperature_sample(
                draw, 0.25, method="exact", plan="2*2", num_outputs=4, generator=seed
            ).samples
            for seed in range(400)
        ]
    )
    target = tempered(PEAKED, 0.25)
    assert chi_square_pvalue(outs[:, 0], target) > ALPHA
    assert chi_square_pvalue(outs.flatten(), target) > ALPHA


@pytest.mark.parametrize("plan,temperature", [("2*2", 0.25), ("(2*2)+(2+(2*2))", 0.1)])
def test_draws_per_output_near_tree_cost(plan, temperature):
    """Measured draws per output of an explicit tree stay within [0.9, 1.25] x its expected
    cost (c(a+b) = (c(a) + c(b)) S(a) S(b) / S(a+b))."""
    res = it.temperature_sample(
        categorical_draw(ZIPF),
        temperature,
        method="exact",
        plan=plan,
        num_outputs=3000,
        generator=2,
    )
    expected = it.expected_exact_draws(ZIPF, temperature, plan=plan)
    ratio = res.draws / 3000 / expected
    assert 0.9 < ratio < 1.25, (res.draws / 3000, expected)


def test_trees_beat_flat_rounds_at_low_temperature():
    flat = it.expected_exact_draws(ZIPF, 0.1, plan="flat")
    best = it.expected_exact_draws(ZIPF, 0.1)
    assert flat == pytest.approx(5.6e5, rel=0.01)
    assert best == pytest.approx(211, rel=0.01)
    cost = it.core.expected_exact_cost(ZIPF, 0.25)
    assert cost.plan == "2*2" and cost.draws_per_output == pytest.approx(67.5, rel=0.01)
    # the planner's tree is at least as cheap as hand-made ones
    ps = LawPowerSums(ZIPF)
    for text in ("(2+2)+(3+3)", "2*(2*2.5)", "10"):
        assert float(tree_cost(parse_tree(text), ps)[0]) >= best * (1 - 1e-9)


def test_tree_budget_raises_within_max_draws():
    with pytest.raises(it.DrawBudgetExceeded) as info:
        it.temperature_sample(
            categorical_draw(ZIPF),
            0.1,
            method="exact",
            plan="(2*2)+(2+(2*2))",
            num_outputs=200,
            max_draws=5000,
            generator=0,
        )
    st = info.value.stats
    assert 0 < st["draws"] <= 5000 and st["rounds"] > 0 and "pairs" in st


def test_tree_returns_original_objects_and_is_reproducible():
    table = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))

    def draw_vectors(m, generator=None):
        idx = torch.multinomial(PEAKED.float(), m, replacement=True, generator=generator)
        return table[idx]

    key = lambda x: torch.cdist(x, table).argmin(1)  # noqa: E731
    a = it.temperature_sample(
        draw_vectors, 0.2, key=key, method="exact", num_outputs=40, generator=9
    )
    b = it.temperature_sample(
        draw_vectors, 0.2, key=key, method="exact", num_outputs=40, generator=9
    )
    assert a.samples.shape == (40, 3) and torch.equal(a.samples, table[a.keys])
    assert torch.equal(a.samples, b.samples) and a.draws == b.draws

    words = ["sun", "rain", "snow", "fog"]
    rng = np.random.default_rng(0)
    res = it.temperature_sample(
        lambda m: list(rng.choice(words, m, p=PEAKED.numpy())), 0.2, method="exact", num_outputs=20
    )
    assert isinstance(res.samples, list) and len(res.samples) == 20


def test_result_reports_plan_and_expected_draws():
    res = it.temperature_sample(
        categorical_draw(ZIPF), 0.1, method="exact", num_outputs=100, generator=1
    )
    assert res.plan and res.pilot_draws > 0
    assert res.expected_draws == pytest.approx(res.extra["plan_draws_per_output"] * 100)
    assert res.draws >= res.pilot_draws + 100 * 10  # at least 1/T draws per output


def test_bad_plans_are_refused_with_a_clear_error():
    draw = categorical_draw(PEAKED)
    with pytest.raises(ValueError, match="add up to 1/T"):
        it.temperature_sample(draw, 0.1, method="exact", plan="2+2")
    with pytest.raises(ValueError, match=">= 1"):
        it.temperature_sample(draw, 0.2, method="exact", plan="4.5+0.5")
    with pytest.raises(ValueError, match="unexpected"):
        it.temperature_sample(draw, 0.25, method="exact", plan="2 + 2)")
    with pytest.raises(TypeError, match="plan must be"):
        it.temperature_sample(draw, 0.25, method="exact", plan=4)
