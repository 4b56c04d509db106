"""Statistical tests: temperature on the shipped CALM demo model's next-chunk law.

For the prompt ``"cat "`` the model's next chunk is (nearly) the grammar's verb law
(0.5, 0.3, 0.15, 0.05). We estimate the model's own T = 1 law p^ from M1 plain draws, form the
target q^ = p^^(1/T) / Z at T = 0.5, and compare the empirical law of samples at T = 0.5 with it.

Tolerance on TV(empirical at T, q^), derived from the sample sizes (all seeds fixed):

* sample part (m samples at T): E TV <= 1/2 sum_x sqrt(q_x (1 - q_x) / m)  (Jensen), and changing
  one sample moves TV by <= 1/m, so Var <= 1/(2 m)  (Efron-Stein);
* target part (M1 draws at T = 1): q(p) = p^s / Z has
  dq_x = s q_x (dp_x / p_x - sum_y q_y dp_y / p_y), so to first order
  TV(q(p^), q(p)) <= L TV(p^, p) with L = 2 s max_x q_x / p_x; then
  E <= L * 1/2 sum_x sqrt(p_x (1 - p_x) / M1) and Var <= L^2 / (2 M1) (one draw moves TV(p^, p)
  by <= 1/M1);
* batch method only: its bias at this law and N, TV(E[selection law], q^), computed by simulating
  the selection rule on categorical keys drawn from p^ (20 000 batches, exact selection
  probabilities averaged, so the simulation's own noise is far below the other terms).

tolerance = E-bounds + Z_SIGMA * sqrt(Var bounds) (+ batch bias). With Z_SIGMA = 3 a correct
sampler fails with probability ~1e-3 under the normal approximation (the E terms are upper
bounds, so less). Each test also checks that it *could* fail: the untempered law p^ is many
tolerances away from the measured law.
"""

from __future__ import annotations

import math

import pytest
import torch

import implicit_temperature as it
from implicit_temperature.adapters.calm import CALMAdapter, generate, load_demo_model

T = 0.5
S = 1.0 / T
PROMPT = "cat "
M1 = 200_000          # T = 1 draws for p^
M_EXACT = 40_000      # exact-method samples
M_BATCH = 3 * 1000    # batch-method samples (3 generate calls of B = 1000 prompts, N = 200)
N_BATCH = 200
Z_SIGMA = 3.0


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
    draws = torch.cat([adapter.draw(M1 // 4, generator=g)[0] for _ in range(4)])   # (M1, K)
    chunks, inv = torch.unique(draws, dim=0, return_inverse=True)
    p = torch.bincount(inv, minlength=len(chunks)).double() / len(draws)
    return chunks, p


def empirical(chunks: torch.Tensor, samples: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Frequencies of ``samples (m, K)`` over ``chunks``, and the mass outside them."""
    match = (samples[:, None, :] == chunks[None]).all(-1)
    return match.double().mean(0), 1.0 - match.any(-1).double().mean().item()


def tempered(p: torch.Tensor, s: float) -> torch.Tensor:
    w = p.pow(s)
    return w / w.sum()


def tv(freq: torch.Tensor, outside: float, target: torch.Tensor) -> float:
    return 0.5 * ((freq - target).abs().sum().item() + outside)


def tolerance(p: torch.Tensor, m: int, bias: float = 0.0) -> float:
    q = tempered(p, S)
    lip = 2 * S * (q / p).max().item()
    mean = 0.5 * (q * (1 - q) / m).sqrt().sum().item()
    mean += lip * 0.5 * (p * (1 - p) / M1).sqrt().sum().item()
    sd = math.sqrt(1 / (2 * m) + lip**2 / (2 * M1))
    return mean + Z_SIGMA * sd + bias


def batch_bias(p: torch.Tensor, n: int, num_batches: int = 20_000) -> float:
    """TV between the batch method's selection law (N = n, T) on categorical p and p^s / Z."""
    g = torch.Generator().manual_seed(99)
    keys = torch.multinomial(p.float(), num_batches * n, replacement=True, generator=g)
    keys = keys.view(num_batches, n)
    probs = it.selection_probabilities(keys, T)                     # (num_batches, n)
    law = torch.zeros(num_batches, len(p), dtype=torch.float64).scatter_add_(1, keys, probs)
    return 0.5 * (law.mean(0) - tempered(p, S)).abs().sum().item()


def test_reference_law_is_the_grammar_branch(reference):
    """The demo model learned the grammar: after 'cat ' the verbs saw/fed/met/hid with
    0.5/0.3/0.15/0.05 (TV < 0.05) and almost no off-grammar chunk."""
    _, p = reference
    top = torch.sort(p, descending=True).values
    grammar = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    padded = torch.zeros(max(len(top), 4), dtype=torch.float64)
    padded[: len(top)] = top
    assert 0.5 * (padded[:4] - grammar).abs().sum().item() + padded[4:].sum().item() < 0.05


def test_exact_method_matches_squared_law(demo, reference):
    model, tok = demo
    chunks, p = reference
    sampler = it.TemperatureSampler(model, context=tok.encode(PROMPT))   # adapter found by plugins
    assert sampler.adapter.name == "calm"
    res = sampler.sample(T, method="exact", num_outputs=M_EXACT, generator=7)
    assert res.samples.shape == (1, M_EXACT, model.patch_size)
    freq, outside = empirical(chunks, res.samples[0])
    tol = tolerance(p, M_EXACT)
    got = tv(freq, outside, tempered(p, S))
    print(f"exact: TV {got:.4f} (tolerance {tol:.4f}); draws/output {res.draws / M_EXACT:.2f}")
    assert got < tol
    assert tv(freq, outside, p) > 3 * tol          # the test can fail: T = 1 is far away


def test_batch_method_through_generate_matches_squared_law(demo, reference):
    """generate() with B = 1000 copies of the prompt, one chunk each: the vectorised batch
    selection over B gives the tempered law."""
    model, tok = demo
    chunks, p = reference
    ids = tok.encode(PROMPT).expand(M_BATCH // 3, -1)
    outs = [generate(model, ids, temperature=T, method="batch", num_samples=N_BATCH,
                     max_new_tokens=model.patch_size, generator=seed)[:, -model.patch_size:]
            for seed in (11, 12, 13)]
    freq, outside = empirical(chunks, torch.cat(outs))
    bias = batch_bias(p, N_BATCH)
    tol = tolerance(p, M_BATCH, bias)
    got = tv(freq, outside, tempered(p, S))
    print(f"batch: TV {got:.4f} (tolerance {tol:.4f}, of which batch bias {bias:.4f})")
    assert bias < 0.01
    assert got < tol
    assert tv(freq, outside, p) > 2 * tol
