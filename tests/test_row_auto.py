"""method="auto" (and exact's planning pilot) with one generator per problem (core/row_plans.py,
core/row_runs.py): each problem's pilot, decision and run come from its own stream, so a
problem's result does not depend on what it is batched with, and the law stays P^(1/T)."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import ALPHA, chi_square_pvalue, tempered
from test_row_generators import LAWS, active_draw, per_row_draw

import implicit_temperature as it
from implicit_temperature.core.preview import Estimate


def _mixed_laws() -> torch.Tensor:
    """8 problems: 4 peaked laws on 6 outcomes (auto runs exact there at T = 0.25) and 4
    log-normal laws on 300 outcomes (spread, top share ~0.02: auto runs batch), so one call
    mixes both methods."""
    g = torch.Generator().manual_seed(8)
    laws = torch.zeros(8, 300)
    laws[:4, :6] = LAWS[:4]
    laws[4:] = torch.softmax(torch.randn(4, 300, generator=g), dim=1)
    return laws


def _alone_and_together(make_draw, laws, temperature, kw):
    """The batch's result, and each row's result when it is the only problem."""
    seeds = [5000 + b for b in range(laws.shape[0])]
    together = it.temperature_sample(make_draw(laws), temperature, generator=seeds, **kw)
    alone = [
        it.temperature_sample(make_draw(laws[b : b + 1]), temperature, generator=[s], **kw)
        for b, s in enumerate(seeds)
    ]
    return together, alone


@pytest.mark.filterwarnings("ignore::implicit_temperature.AccuracyWarning")
@pytest.mark.parametrize("make_draw", [per_row_draw, active_draw])
@pytest.mark.parametrize(
    "temperature,kw",
    [
        (0.5, {}),
        (0.25, {}),
        (0.1, {"max_draws": 20_000}),
        (0.25, {"method": "exact"}),  # plan="auto" below T = 0.5: each row's tree from its pilot
        (0.1, {"method": "exact"}),
        (0.25, {"method": "batch", "num_samples": "auto"}),
    ],
)
def test_an_auto_row_alone_equals_the_same_row_in_a_batch_of_16(make_draw, temperature, kw):
    kw = {"num_outputs": 6, "batched": True, **kw}
    together, alone = _alone_and_together(make_draw, LAWS, temperature, kw)
    assert together.samples.shape == (16, 6)
    for b, res in enumerate(alone):
        assert torch.equal(res.samples[0], together.samples[b]), b
        assert res.extra["methods"][0] == together.extra["methods"][b]
    order = list(reversed(range(16)))
    seeds = [5000 + b for b in order]
    shuffled = it.temperature_sample(make_draw(LAWS[order]), temperature, generator=seeds, **kw)
    assert torch.equal(shuffled.samples.flip(0), together.samples)


@pytest.mark.filterwarnings("ignore::implicit_temperature.AccuracyWarning")
@pytest.mark.parametrize("make_draw", [per_row_draw, active_draw])
def test_rows_that_choose_different_methods_merge_into_one_result(make_draw):
    """4 peaked rows (exact) and 4 spread rows (batch) in one call: method "mixed", each row's
    method in extra["methods"], each alone as in the batch, the accuracy 0 for exact rows and the
    batch estimate for the others, cascade levels 1/T for exact rows."""
    laws = _mixed_laws()
    kw = {"num_outputs": 4, "batched": True}
    together, alone = _alone_and_together(make_draw, laws, 0.25, kw)
    assert together.method == "mixed"
    assert together.extra["methods"] == ["exact"] * 4 + ["batch"] * 4
    for b, res in enumerate(alone):
        assert torch.equal(res.samples[0], together.samples[b]), b
    acc = together.accuracy
    assert acc is not None and acc.per_problem is not None
    assert torch.equal(acc.per_problem[:4], torch.zeros(4, dtype=torch.float64))
    assert bool((acc.per_problem[4:] > 0).all())
    for b in range(4, 8):  # each batch row's estimate is the one it gets alone
        assert float(acc.per_problem[b]) == pytest.approx(alone[b].estimated_tv, rel=1e-12)
    assert together.cascade_level is not None and together.cascade_level.shape == (8, 4)
    assert bool((together.cascade_level[:4] == 4.0).all())
    if make_draw is active_draw:  # without active=, rows left out are drawn too (and counted)
        assert together.draws == sum(r.draws for r in alone)


@pytest.mark.filterwarnings("ignore::implicit_temperature.AccuracyWarning")
@pytest.mark.parametrize("method", ["auto", "exact"])
def test_per_row_auto_keeps_its_law(method):
    """400 problems of one 4-outcome law, each its own seed, 20 outputs each at T = 0.25, each
    row planned from its own pilot (auto: exact for almost every row, batch for a few whose
    pilot misled; exact: its tree): the outputs of the exact rows follow P^4 (chi-square
    p > ALPHA = 1e-3; they are exact whatever the pilot decided, as the pilot's draws are never
    reused) and not P^(1/T) with T off by 10% (p < ALPHA)."""
    law = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    b = 400
    res = it.temperature_sample(
        active_draw(law.expand(b, -1)),
        0.25,
        method=method,
        num_outputs=20,
        batched=True,
        generator=list(range(b)),
    )
    exact = torch.tensor([m == "exact" for m in res.extra["methods"]])
    assert int(exact.sum()) > 0.9 * b
    outputs = res.samples[exact].flatten()
    assert chi_square_pvalue(outputs, tempered(law, 0.25)) > ALPHA
    assert chi_square_pvalue(outputs, tempered(law, 0.25 * 1.1)) < ALPHA


def test_per_row_auto_shares_draw_calls():
    """16 rows together make far fewer draw calls than 16 runs one at a time: the pilots grow
    together (one call per distinct size) and the rows with one plan run as one group."""
    calls: list[int] = []
    kw = dict(num_outputs=4, batched=True)
    it.temperature_sample(active_draw(LAWS, calls), 0.5, generator=list(range(16)), **kw)
    together = len(calls)
    calls.clear()
    for b in range(16):
        it.temperature_sample(active_draw(LAWS[b : b + 1], calls), 0.5, generator=[b], **kw)
    assert together < len(calls) / 2, (together, len(calls))


def test_per_row_auto_budget_is_each_rows_own():
    """max_draws bounds each problem's own draws: a row that fits alone fits among others (16
    rows' pilots alone would overrun a shared 2000), and a budget that no method fits is
    refused before any draw."""
    kw = dict(num_outputs=4, batched=True, max_draws=2000)
    seeds = list(range(16))
    together = it.temperature_sample(active_draw(LAWS), 0.25, generator=seeds, **kw)
    alone = it.temperature_sample(active_draw(LAWS[3:4]), 0.25, generator=[3], **kw)
    assert torch.equal(alone.samples[0], together.samples[3])
    with pytest.raises(it.DrawBudgetExceeded, match="neither method fits max_draws=9"):
        it.temperature_sample(active_draw(LAWS), 0.25, generator=seeds, **{**kw, "max_draws": 9})


def test_per_row_auto_warns_once_on_spread_rows():
    """Spread rows at T = 0.1 cannot meet the tolerance within the default budget: one
    AccuracyWarning for the call; peaked rows alone stay silent."""
    laws = _mixed_laws()
    with pytest.warns(it.AccuracyWarning) as record:
        it.temperature_sample(
            per_row_draw(laws[4:]), 0.1, num_outputs=4, batched=True, generator=[1, 2, 3, 4]
        )
    assert len([w for w in record if issubclass(w.category, it.AccuracyWarning)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", it.AccuracyWarning)
        it.temperature_sample(
            per_row_draw(laws[:4]), 0.5, num_outputs=4, batched=True, generator=[1, 2, 3, 4]
        )


def test_dry_run_takes_one_generator_per_problem():
    """dry_run=True with a list: the pilot's rows are drawn from their own streams (the same
    seeds give the same preview), and an unbatched list is refused naming batched=True."""
    kw = dict(batched=True, dry_run=True, num_outputs=4)
    first = it.temperature_sample(active_draw(LAWS), 0.25, generator=list(range(16)), **kw)
    again = it.temperature_sample(active_draw(LAWS), 0.25, generator=list(range(16)), **kw)
    assert isinstance(first, Estimate) and str(first) == str(again)
    assert first.pilot_draws == 16 * 200
    with pytest.raises(it.InvalidArgumentError, match="batched=True"):
        it.temperature_sample(
            lambda m, generator=None: torch.zeros(m), 0.5, generator=[1, 2], dry_run=True
        )
