"""The exact method: goodness of fit against P^(1/T), cost against the formula, lanes, budget."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from conftest import (
    ALPHA,
    PEAKED,
    ZIPF,
    categorical_draw,
    chi_square_pvalue,
    tempered,
)

import implicit_temperature as it
from implicit_temperature.core import expected_exact_cost


@pytest.mark.parametrize(
    "law_name,temperature",
    [(law, t) for law in ("peaked", "zipf") for t in (1.0, 0.8, 0.5, 0.37)] + [("peaked", 0.25)],
)
def test_exact_matches_tempered_law(law_name, temperature):
    p = PEAKED if law_name == "peaked" else ZIPF
    # method="exact": auto may now take a batch N that meets its tolerance at lower cost
    res = it.temperature_sample(
        categorical_draw(p), temperature, method="exact", num_outputs=20_000, generator=7
    )
    assert res.method == "exact"
    assert res.samples.shape == (20_000,)
    pvalue = chi_square_pvalue(res.samples, tempered(p, temperature))
    assert pvalue > ALPHA, f"chi-square p={pvalue:.2e} at T={temperature}"


def test_goodness_of_fit_has_power():
    """The same test rejects the untempered law: a sampler that ignored T would fail above."""
    draws = categorical_draw(PEAKED)(20_000, torch.Generator().manual_seed(1))
    assert chi_square_pvalue(draws, tempered(PEAKED, 0.8)) < 1e-10


@pytest.mark.parametrize(
    "law_name,temperature",
    [
        ("peaked", 0.9),
        ("peaked", 0.5),
        ("peaked", 0.37),
        ("peaked", 0.25),
        ("zipf", 0.8),
        ("zipf", 0.5),
        ("zipf", 0.37),
    ],
)
def test_draws_per_output_near_formula(law_name, temperature):
    """Flat rounds: measured draws per output stay within [0.9, 1.3] x the sequential
    expectation."""
    p = PEAKED if law_name == "peaked" else ZIPF
    res = it.temperature_sample(
        categorical_draw(p),
        temperature,
        method="exact",
        plan="flat",
        num_outputs=5_000,
        generator=3,
    )
    expected = it.expected_exact_draws(p, temperature, plan="flat")
    ratio = res.draws / 5_000 / expected
    assert 0.9 < ratio < 1.3, f"draws/output {res.draws / 5000:.2f} vs formula {expected:.2f}"
    assert res.model_calls < res.draws / 10, "lanes should feed many rounds per draw() call"


def test_temperature_one_costs_one_draw_per_output():
    res = it.temperature_sample(categorical_draw(PEAKED), 1.0, num_outputs=500, generator=0)
    assert res.draws == 500 and res.model_calls == 1


def _sequential_reference(p, temperature, n_outputs, seed):
    """One round at a time, plain Python: the flat round of docs/algorithms.md, counting draws."""
    rng = random.Random(seed)
    s = 1.0 / temperature
    n, a = int(math.floor(s + 1e-12)), s - math.floor(s + 1e-12)
    cum = np.cumsum(p.numpy())

    def draw():
        return int(np.searchsorted(cum, rng.random(), side="right"))

    draws, outs = 0, []
    while len(outs) < n_outputs:
        x = draw()
        draws += 1
        ok = True
        for _ in range(n - 1):
            draws += 1
            if draw() != x:
                ok = False
                break
        if ok and a > 0:
            i = 1
            while True:
                draws += 1
                if draw() == x:
                    break
                if rng.random() < a / i:
                    ok = False
                    break
                i += 1
        if ok:
            outs.append(x)
    return draws / n_outputs


@pytest.mark.parametrize("temperature", [0.8, 0.5, 0.37])
def test_cost_formula_matches_sequential_algorithm(temperature):
    """The cost formula is the mean cost of the plain sequential algorithm (within 4%)."""
    measured = _sequential_reference(PEAKED, temperature, 6_000, seed=11)
    formula = expected_exact_cost(PEAKED, temperature, plan="flat").draws_per_output
    assert abs(measured / formula - 1) < 0.04, (measured, formula)


def test_outputs_independent_of_round_duration():
    """num_outputs=1 in each of many problems: rare outcomes have long Bernoulli-factory rounds, so
    taking whichever round finishes first would favour common outcomes. Start order does not."""
    p = torch.tensor([0.6, 0.3, 0.09, 0.01], dtype=torch.float64)
    b = 4_000

    def draw(m, generator=None):
        return torch.multinomial(p.float(), b * m, replacement=True, generator=generator).view(b, m)

    res = it.temperature_sample(draw, 0.7, batched=True, num_outputs=1, generator=5)
    assert res.samples.shape == (b, 1)
    assert chi_square_pvalue(res.samples.flatten(), tempered(p, 0.7)) > ALPHA


def test_batched_problems_have_their_own_laws():
    laws = torch.stack([PEAKED, PEAKED.flip(0), torch.full((4,), 0.25, dtype=torch.float64)])

    def draw(m, generator=None):
        return torch.multinomial(laws.float(), m, replacement=True, generator=generator)

    res = it.temperature_sample(draw, 0.5, batched=True, num_outputs=6_000, generator=2)
    assert res.samples.shape == (3, 6_000) and res.keys.shape == (3, 6_000)
    for row, law in zip(res.samples, laws, strict=True):
        assert chi_square_pvalue(row, tempered(law, 0.5)) > ALPHA


def test_samples_are_the_original_objects():
    """Vectors come back as vectors, keyed by their category; lists as lists; arrays as arrays."""
    table = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))

    def draw_vectors(m, generator=None):
        idx = torch.multinomial(PEAKED.float(), m, replacement=True, generator=generator)
        return table[idx]

    res = it.temperature_sample(
        draw_vectors,
        0.5,
        key=lambda x: torch.cdist(x, table).argmin(1),
        num_outputs=50,
        generator=1,
    )
    assert res.samples.shape == (50, 3)
    assert torch.equal(res.samples, table[res.keys])

    words = ["sun", "rain", "snow", "fog"]
    rng = np.random.default_rng(0)
    res = it.temperature_sample(
        lambda m: list(rng.choice(words, m, p=PEAKED.numpy())), 0.5, num_outputs=20
    )
    assert isinstance(res.samples, list) and len(res.samples) == 20
    assert set(res.samples) <= set(words)

    res = it.temperature_sample(lambda m: rng.integers(0, 3, size=(m, 2)), 0.5, num_outputs=7)
    assert isinstance(res.samples, np.ndarray) and res.samples.shape == (7, 2)


def test_same_seed_same_result_and_other_seed_differs():
    draw = categorical_draw(ZIPF)
    a = it.temperature_sample(draw, 0.37, num_outputs=300, generator=123)
    b = it.temperature_sample(draw, 0.37, num_outputs=300, generator=123)
    c = it.temperature_sample(draw, 0.37, num_outputs=300, generator=124)
    assert torch.equal(a.samples, b.samples) and a.draws == b.draws
    assert not torch.equal(a.samples, c.samples)


def test_budget_error_is_prompt_and_carries_stats():
    uniform = torch.full((1000,), 1e-3, dtype=torch.float64)
    with pytest.raises(it.DrawBudgetExceeded) as info:
        it.temperature_sample(
            categorical_draw(uniform),
            0.1,
            method="exact",
            plan="flat",
            num_outputs=1,
            max_draws=20_000,
            generator=0,
        )
    stats = info.value.stats
    assert 0 < stats["draws"] <= 20_000
    assert stats["accepted_rounds"] == 0 and stats["rounds"] > 0
    assert "max_draws" in str(info.value) and "batch" in str(info.value)


def test_exact_refuses_temperature_above_one():
    with pytest.raises(it.InvalidTemperatureError, match='method="batch"'):
        it.temperature_sample(categorical_draw(PEAKED), 1.5, method="exact")
    # the default, method="auto", works at any T (batch above 1)
    assert it.temperature_sample(categorical_draw(PEAKED), 1.5).method == "batch"


def test_batched_draw_with_active_skips_finished_problems():
    """A batched draw that declares active= is called only for problems with rounds to run (the
    usual case: one output per prompt, as in decoding); the outputs keep their law and far fewer
    draws are spent than when every call covers all B."""
    laws = torch.stack(
        [torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5]), torch.tensor([0.05, 0.95])] * 400
    ).double()  # B = 1200, unequal costs
    calls = []

    def draw_all(m, generator=None):
        return torch.multinomial(laws.float(), m, replacement=True, generator=generator)

    def draw_some(m, generator=None, active=None):
        calls.append(len(laws) if active is None else int(active.sum()))
        rows = laws if active is None else laws[active]
        return torch.multinomial(rows.float(), m, replacement=True, generator=generator)

    full = it.temperature_sample(
        draw_all, 0.4, method="exact", plan="flat", batched=True, num_outputs=1, generator=1
    )
    part = it.temperature_sample(
        draw_some, 0.4, method="exact", plan="flat", batched=True, num_outputs=1, generator=1
    )
    assert min(calls) < len(laws), "finished problems were never left out"
    assert part.draws < 0.5 * full.draws, (part.draws, full.draws)
    assert part.samples.shape == (1200, 1)
    for row in range(3):  # pool the 400 problems that share each law
        outcomes = part.samples[row::3].flatten()
        assert chi_square_pvalue(outcomes, tempered(laws[row], 0.4)) > ALPHA


def test_merging_accepted_rounds_is_linear(monkeypatch):
    """The accepted rounds were joined chunk by chunk (quadratic: 1e6 outputs took 45 x the time
    of 1e5). Count the sample entries that Samples.cat copies in a run with thousands of small
    chunks (max_lanes=16): lanes and merge together stay within a small multiple of the
    outputs."""
    from implicit_temperature.core.samples import Samples

    copied = []
    original = Samples.cat

    def counting_cat(self, other):
        out = original(self, other)
        copied.append(out.size * out.num_problems)
        return out

    monkeypatch.setattr(Samples, "cat", counting_cat)
    n = 8_000
    res = it.temperature_sample(
        categorical_draw(PEAKED),
        0.5,
        method="exact",
        plan="flat",
        num_outputs=n,
        max_lanes=16,
        generator=0,
    )
    assert res.samples.shape == (n,)
    assert sum(copied) < 60 * n, (sum(copied), len(copied))  # chunk by chunk: ~2000 * n


def test_progress_is_off_by_default(capsys):
    it.temperature_sample(categorical_draw(ZIPF), 0.1, method="exact", num_outputs=20, generator=0)
    assert capsys.readouterr().err == ""


def test_progress_bar_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    res = it.temperature_sample(
        categorical_draw(ZIPF), 0.1, method="exact", num_outputs=20, generator=0, progress=True
    )
    err = capsys.readouterr().err
    assert "exact T=0.1" in err and "draw" in err
    assert res.method == "exact"


def test_progress_without_tqdm_goes_to_the_log(monkeypatch, caplog):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails as if not installed
    with caplog.at_level("INFO", logger="implicit_temperature.progress"):
        it.temperature_sample(
            categorical_draw(ZIPF), 0.1, method="exact", num_outputs=20, generator=0, progress=True
        )
    messages = [r.getMessage() for r in caplog.records]
    assert any("tqdm is not installed" in m for m in messages)
    assert any("draws" in m for m in messages)
