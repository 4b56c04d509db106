"""Statistical tests: temperature on the shipped CALM demo model's next-chunk law.

For the prompt ``"cat "`` the model's next chunk is (nearly) the grammar's verb law
(0.5, 0.3, 0.15, 0.05). We estimate the model's own T = 1 law p^ from M1 plain draws, form the
target q^ = p^^(1/T) / Z at T = 0.5, and compare the empirical law of m samples at T = 0.5 with
it by total variation (TV). Seeds are fixed.

Tolerance, derived from the sample sizes: under the null hypothesis (the samples at T follow
q = p^(1/T) / Z exactly), the statistic TV(empirical_m, q(p^_M1)) has a distribution fixed by p,
m and M1. We compute it by parametric bootstrap with p = p^: R = 4000 replicates of
(multinomial(m, q), multinomial(M1, p)) counts, each drawn exactly as a chain of binomials over
the categories, and take its 1 - ALPHA quantile (ALPHA = 1e-3, the suite's level: a correct
sampler fails with probability ~1e-3). For the batch method, which is biased for finite N, the
tolerance adds its bias at this law and N, TV(E[selection law], q), computed by running the
selection rule on categorical keys drawn from p^ (20 000 batches, exact per-batch selection
probabilities averaged); by the triangle inequality the TV then stays under the sum.

Each test also checks that it can fail: the untempered law p^ and the law at T = 0.6 are measured
against the same samples and must be beyond the tolerance.
"""

from __future__ import annotations

import pytest
import torch

import implicit_temperature as it
from implicit_temperature.adapters.calm import CALMAdapter, generate
from implicit_temperature.demos.calm import load_demo_model
from implicit_temperature.demos.laws import (
    frequencies,
    tempered,
    total_variation,
    total_variation_rows,
)

T = 0.5
S = 1.0 / T
PROMPT = "cat "
M1 = 200_000  # T = 1 draws for p^
M_EXACT = 20_000  # exact-method samples
M_BATCH = 3 * 1000  # batch-method samples (3 generate calls of B = 1000 prompts, N = 200)
N_BATCH = 200
ALPHA = 1e-3


@pytest.fixture(scope="module")
def demo():
    model, tok = load_demo_model()
    return model, tok


@pytest.fixture(scope="module")
def reference(demo):
    """p^: the model's T = 1 next-chunk law after PROMPT, over the distinct chunks seen."""
    model, tok = demo
    adapter = CALMAdapter(model, context=tok.encode(PROMPT))
    g = torch.Generator().manual_seed(1234)
    draws = torch.cat([adapter.draw(M1 // 4, generator=g)[0] for _ in range(4)])  # (M1, K)
    chunks, inv = torch.unique(draws, dim=0, return_inverse=True)
    p = frequencies(inv, len(chunks))
    return chunks, p


def empirical(chunks: torch.Tensor, samples: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Frequencies of ``samples (m, K)`` over ``chunks``, and the mass outside them."""
    match = (samples[:, None, :] == chunks[None]).all(-1)
    return match.double().mean(0), 1.0 - match.any(-1).double().mean().item()


def tv(freq: torch.Tensor, outside: float, target: torch.Tensor) -> float:
    """TV of the frequencies of the known chunks (plus the mass outside them) to ``target``."""
    return total_variation(freq, target) + 0.5 * outside


def multinomial_counts(p: torch.Tensor, total: int, reps: int, g: torch.Generator) -> torch.Tensor:
    """``(reps, len(p))`` exact multinomial(total, p) counts, as a chain of binomials."""
    counts = torch.zeros(reps, len(p), dtype=torch.float64)
    left = torch.full((reps,), float(total), dtype=torch.float64)
    tail = p.flip(0).cumsum(0).flip(0)  # P(category >= i)
    for i in range(len(p) - 1):
        cond = (p[i] / tail[i]).clamp(0, 1).expand(reps).contiguous()
        counts[:, i] = torch.binomial(left, cond, generator=g)
        left = left - counts[:, i]
    counts[:, -1] = left
    return counts


def tolerance(p: torch.Tensor, m: int, bias: float = 0.0, reps: int = 4000) -> float:
    """1 - ALPHA quantile of TV(empirical_m, q(p^_M1)) under the null, plus ``bias``."""
    g = torch.Generator().manual_seed(2024)
    q = tempered(p, T)
    freq = multinomial_counts(q, m, reps, g) / m
    q_hat = tempered(multinomial_counts(p, M1, reps, g) / M1, T)
    tv_null = total_variation_rows(freq, q_hat)
    return torch.quantile(tv_null, 1 - ALPHA).item() + bias


def batch_bias(p: torch.Tensor, n: int, num_batches: int = 20_000) -> float:
    """TV between the batch method's selection law (N = n, T) on categorical p and p^s / Z."""
    g = torch.Generator().manual_seed(99)
    keys = torch.multinomial(p.float(), num_batches * n, replacement=True, generator=g)
    keys = keys.view(num_batches, n)
    probs = it.selection_probabilities(keys, T)  # (num_batches, n)
    law = torch.zeros(num_batches, len(p), dtype=torch.float64).scatter_add_(1, keys, probs)
    return total_variation(law.mean(0), tempered(p, T))


def test_reference_law_is_the_grammar_branch(reference):
    """The demo model learned the grammar: after 'cat ' the verbs saw/fed/met/hid with
    0.5/0.3/0.15/0.05 (TV < 0.03; 0.015 when trained), under 2% on other chunks."""
    _, p = reference
    top = torch.sort(p, descending=True).values
    grammar = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    padded = torch.zeros(max(len(top), 4), dtype=torch.float64)
    padded[: len(top)] = top
    assert 0.5 * (padded[:4] - grammar).abs().sum().item() + padded[4:].sum().item() < 0.03
    assert padded[4:].sum().item() < 0.02


def test_exact_method_matches_squared_law(demo, reference):
    model, tok = demo
    chunks, p = reference
    sampler = it.TemperatureSampler(model, context=tok.encode(PROMPT))  # adapter found by plugins
    assert sampler.adapter.name == "calm"
    res = sampler.sample(T, method="exact", num_outputs=M_EXACT, generator=7)
    assert res.samples.shape == (1, M_EXACT, model.patch_size)
    freq, outside = empirical(chunks, res.samples[0])
    tol = tolerance(p, M_EXACT)
    got = tv(freq, outside, tempered(p, T))
    print(f"exact: TV {got:.4f} (tolerance {tol:.4f}); draws/output {res.draws / M_EXACT:.2f}")
    assert got < tol
    # the test can fail: the untempered law and the law at T = 0.6 are beyond the tolerance
    assert tv(freq, outside, p) > 3 * tol
    assert tv(freq, outside, tempered(p, 0.6)) > tol


def test_batch_method_through_generate_matches_squared_law(demo, reference):
    """generate() with B = 1000 copies of the prompt, one chunk each: the vectorised batch
    selection over B gives the tempered law."""
    model, tok = demo
    chunks, p = reference
    ids = tok.encode(PROMPT).expand(M_BATCH // 3, -1)
    outs = [
        generate(
            model,
            ids,
            temperature=T,
            method="batch",
            num_samples=N_BATCH,
            max_new_tokens=model.patch_size,
            generator=seed,
        )[:, -model.patch_size :]
        for seed in (11, 12, 13)
    ]
    freq, outside = empirical(chunks, torch.cat(outs))
    bias = batch_bias(p, N_BATCH)
    tol = tolerance(p, M_BATCH, bias)
    got = tv(freq, outside, tempered(p, T))
    print(f"batch: TV {got:.4f} (tolerance {tol:.4f}, of which batch bias {bias:.4f})")
    assert bias < 0.01
    assert got < tol
    assert tv(freq, outside, p) > 3 * tol
    assert tv(freq, outside, tempered(p, 0.7)) > tol
