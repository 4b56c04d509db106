"""``generator=`` as a list, one stream per problem (core/rows.py): a batched problem's result
depends on its own generator only, and the batch method keeps its law."""

from __future__ import annotations

import pytest
import torch
from conftest import ALPHA, PEAKED, chi_square_pvalue, frequencies, tempered, total_variation

import implicit_temperature as it
from implicit_temperature.core import batch_selection
from implicit_temperature.core.errors import InvalidArgumentError
from implicit_temperature.core.rows import RowGenerators

#: 16 different laws on 6 outcomes, one per problem (so a row mixed up with another shows).
LAWS = torch.softmax(torch.randn(16, 6, generator=torch.Generator().manual_seed(3)) * 1.5, dim=1)


def per_row_draw(laws: torch.Tensor):
    """Batched draw (B, m): row b from laws[b], with generator[b] when given a list."""

    def draw(m: int, generator=None) -> torch.Tensor:
        if isinstance(generator, (list, tuple)):
            assert len(generator) == laws.shape[0]
            rows = [
                torch.multinomial(laws[b].float(), m, replacement=True, generator=g)
                for b, g in enumerate(generator)
            ]
            return torch.stack(rows)
        return torch.multinomial(laws.float(), m, replacement=True, generator=generator)

    return draw


@pytest.mark.filterwarnings("ignore::implicit_temperature.AccuracyWarning")
@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_a_row_alone_equals_the_same_row_in_a_batch_of_16(temperature):
    kw = dict(method="batch", num_samples=40, num_outputs=8, batched=True)
    seeds = [1000 + b for b in range(16)]
    together = it.temperature_sample(per_row_draw(LAWS), temperature, generator=seeds, **kw)
    assert together.samples.shape == (16, 8)
    for b in (0, 5, 15):
        alone = it.temperature_sample(
            per_row_draw(LAWS[b : b + 1]), temperature, generator=[seeds[b]], **kw
        )
        assert torch.equal(alone.samples[0], together.samples[b])
    # and a different batch-mate order changes nothing for the row either
    order = list(reversed(range(16)))
    shuffled = it.temperature_sample(
        per_row_draw(LAWS[order]), temperature, generator=[seeds[i] for i in order], **kw
    )
    assert torch.equal(shuffled.samples.flip(0), together.samples)
    # generators and int seeds are the same streams
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    again = it.temperature_sample(per_row_draw(LAWS), temperature, generator=gens, **kw)
    assert torch.equal(again.samples, together.samples)


@pytest.mark.filterwarnings("ignore::implicit_temperature.AccuracyWarning")
def test_a_batch_rows_accuracy_is_its_own_alone_and_in_a_batch():
    """method="batch" with a generator per problem: each problem's accuracy estimate comes from
    its own pools alone, so it is the same alone, in a batch of 16 and in reversed order (one
    estimate over the stack drew its simulation from one stream, so a row's figure moved with
    its batch-mates); the result keeps no pooled keys."""
    kw = dict(method="batch", num_samples=40, num_outputs=8, batched=True)
    seeds = [1000 + b for b in range(16)]
    together = it.temperature_sample(per_row_draw(LAWS), 0.25, generator=seeds, **kw)
    per = together.accuracy.per_problem
    assert per is not None and per.shape == (16,) and bool(torch.isfinite(per).all())
    assert together.estimated_tv == float(per.max())
    assert "pool_keys" not in together.extra
    for b in (0, 5, 15):
        alone = it.temperature_sample(
            per_row_draw(LAWS[b : b + 1]), 0.25, generator=[seeds[b]], **kw
        )
        assert alone.estimated_tv == float(per[b]), b
    order = list(reversed(range(16)))
    shuffled = it.temperature_sample(
        per_row_draw(LAWS[order]), 0.25, generator=[seeds[i] for i in order], **kw
    )
    assert torch.equal(shuffled.accuracy.per_problem.flip(0), per)
    plain = it.temperature_sample(per_row_draw(LAWS), 0.25, generator=3, **kw)
    assert "pool_keys" not in plain.extra


def test_per_row_gumbel_noise_picks_with_the_selection_probabilities():
    """batch_selection with one generator per row: the pick frequencies over 20000 rows of one
    fixed pool match selection_probabilities (chi-square, p > ALPHA)."""
    pool = torch.tensor([[0, 0, 0, 1, 1, 2, 3, 3, 3, 3]])
    rows = 20_000
    keys = pool.expand(rows, -1)
    sel = batch_selection(keys, 1 / 3, generator=RowGenerators(list(range(rows))))
    probs = it.selection_probabilities(pool, 1 / 3)[0]
    assert chi_square_pvalue(sel.index, probs) > ALPHA


def test_per_row_batch_method_keeps_its_law():
    """200 problems of PEAKED, each its own seed, 100 outputs each at T = 0.5 and N = 200: the
    20k outputs are within TV 0.02 of P^2, as the single-stream batch method is (test_batch.py;
    Monte-Carlo TV noise at 20k outputs on 4 outcomes ~0.006)."""
    b = 200
    laws = PEAKED.expand(b, -1)
    res = it.temperature_sample(
        per_row_draw(laws),
        0.5,
        method="batch",
        num_samples=200,
        num_outputs=100,
        batched=True,
        generator=list(range(b)),
    )
    target = tempered(PEAKED, 0.5)
    assert total_variation(frequencies(res.samples, target.numel()), target) < 0.02


def active_draw(laws: torch.Tensor, calls: list[int] | None = None):
    """Batched draw that takes ``active=`` (only the active rows, each from its own generator)."""

    def draw(m: int, generator=None, active=None) -> torch.Tensor:
        rows = range(laws.shape[0]) if active is None else active.nonzero().flatten().tolist()
        assert isinstance(generator, list) and len(generator) == len(rows)
        if calls is not None:
            calls.append(len(rows))
        return torch.stack(
            [
                torch.multinomial(laws[b].float(), m, replacement=True, generator=g)
                for b, g in zip(rows, generator, strict=True)
            ]
        )

    return draw


@pytest.mark.parametrize("make_draw", [per_row_draw, active_draw])
@pytest.mark.parametrize(
    "temperature,plan",
    [(0.5, "auto"), (0.7, "auto"), (0.25, "flat"), (0.25, "2+2"), (1 / 6, "2*(1.5+1.5)")],
)
def test_an_exact_row_alone_equals_the_same_row_in_a_batch_of_16(make_draw, temperature, plan):
    """method="exact" with one generator per problem: lane counts, coins, budgets and leaf
    rates are each row's own, so a row alone gives exactly what it gives among 15 others (with
    a draw that takes active= and one that does not: rows left out get throwaway streams)."""
    kw = dict(method="exact", plan=plan, num_outputs=8, batched=True)
    seeds = [2000 + b for b in range(16)]
    together = it.temperature_sample(make_draw(LAWS), temperature, generator=seeds, **kw)
    assert together.method == "exact" and together.samples.shape == (16, 8)
    for b in range(16):
        alone = it.temperature_sample(
            make_draw(LAWS[b : b + 1]), temperature, generator=[seeds[b]], **kw
        )
        assert torch.equal(alone.samples[0], together.samples[b]), b
    order = list(reversed(range(16)))
    shuffled = it.temperature_sample(
        make_draw(LAWS[order]), temperature, generator=[seeds[i] for i in order], **kw
    )
    assert torch.equal(shuffled.samples.flip(0), together.samples)


def test_per_row_exact_shares_draw_calls():
    """16 rows decoded together make far fewer draw calls than 16 runs one at a time (rows
    whose lane counts round to the same power of two share a call)."""
    calls: list[int] = []
    kw = dict(method="exact", num_outputs=4, batched=True)
    it.temperature_sample(active_draw(LAWS, calls), 0.5, generator=list(range(16)), **kw)
    together = len(calls)
    calls.clear()
    for b in range(16):
        it.temperature_sample(active_draw(LAWS[b : b + 1], calls), 0.5, generator=[b], **kw)
    assert together < len(calls) / 3, (together, len(calls))


@pytest.mark.parametrize("temperature", [0.5, 0.25])
def test_per_row_exact_keeps_its_law(temperature):
    """2000 problems of one 4-outcome law, each its own seed, 5 outputs each: the 10k outputs
    follow P^(1/T) (chi-square p > ALPHA = 1e-3: a wrong law, e.g. P^(1/T) with T off by 10%,
    fails it; this fixed seed passes). T = 0.25 runs the flat round at 1/T = 4."""
    law = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    b = 2000
    res = it.temperature_sample(
        active_draw(law.expand(b, -1)),
        temperature,
        method="exact",
        plan="flat",
        num_outputs=5,
        batched=True,
        generator=list(range(b)),
    )
    assert chi_square_pvalue(res.samples.flatten(), tempered(law, temperature)) > ALPHA
    wrong = tempered(law, temperature * 1.1)
    assert chi_square_pvalue(res.samples.flatten(), wrong) < ALPHA


def test_per_row_exact_budget_is_each_rows_own():
    """max_draws bounds each problem's own draws: a row that fits alone fits among others."""
    kw = dict(method="exact", num_outputs=4, batched=True, max_draws=400)
    seeds = list(range(16))
    together = it.temperature_sample(active_draw(LAWS), 0.5, generator=seeds, **kw)
    alone = it.temperature_sample(active_draw(LAWS[3:4]), 0.5, generator=[3], **kw)
    assert torch.equal(alone.samples[0], together.samples[3])
    with pytest.raises(it.DrawBudgetExceeded, match="each problem's own"):
        it.temperature_sample(active_draw(LAWS), 0.5, generator=seeds, **{**kw, "max_draws": 9})


def test_per_row_generators_refuse_a_shared_generator():
    """The same torch.Generator listed for several problems would tie their streams: refused.
    (Every method takes one generator per problem; auto and planned exact are covered in
    test_row_auto.py.)"""
    kw = {"num_samples": 10, "batched": True, "method": "batch"}
    with pytest.raises(InvalidArgumentError, match="its own"):
        it.temperature_sample(per_row_draw(LAWS), 0.5, generator=[torch.Generator()] * 16, **kw)


def test_a_list_of_the_wrong_length_is_an_error():
    def draw(m, generator=None):  # 16 problems whatever it is given
        return torch.zeros(16, m, dtype=torch.long)

    with pytest.raises(InvalidArgumentError, match="one generator .or int seed. per problem"):
        it.temperature_sample(draw, 0.5, method="batch", batched=True, generator=[1, 2, 3])


def test_per_row_generators_need_batched():
    with pytest.raises(InvalidArgumentError, match="batched=True"):
        it.temperature_sample(lambda m, generator=None: torch.zeros(m), 0.5, generator=[1, 2])
