"""Statistical test: temperature on the shipped demo pipelines (DDPM and flow matching).

For each demo model and each method (exact, batch) the component frequencies at T = 0.5 must
match the model's own T = 1 component frequencies, squared and renormalised, within a total-
variation tolerance derived from the sample sizes:

* p_hat: component frequencies of M1 plain draws (the model's law P; nearest-mean components).
* target = p_hat^2 / sum(p_hat^2) (P^(1/T) at T = 0.5, estimated).
* the method's law L: for "exact", the target itself; for "batch", the exact selection law of the
  batch rule with N samples at P = p_hat (its finite-N bias), computed by averaging
  ``selection_probabilities`` over 20000 simulated batches.
* tolerance = the 99.99 % quantile of TV(Mult(M2, L) / M2, sq(Mult(M1, p_hat) / M1)) over 20000
  parametric-bootstrap replicates (fixed numpy seed): the TV we would see between an M2-sample
  estimate of the method's law and the M1-sample estimate of the target if the method were right.
  So the statistical noise of both estimates and the batch bias are accounted for, and nothing
  else is.

The test can fail: it also checks that the T = 1 law is farther than the tolerance from the
target (a sampler that ignored the temperature would fail), and all seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from implicit_temperature.core import selection_probabilities
from implicit_temperature.demos.laws import (
    frequencies,
    tempered,
    total_variation_rows,
)
from implicit_temperature.plugins import TemperatureSampler

T = 0.5
M1 = 20_000  # plain draws estimating P
M2 = {"exact": 4_000, "batch": 1_500}  # outputs at T
N_BATCH = 100  # N of the batch method
QUANTILE = 0.9999
K = 4


def _square(p: np.ndarray) -> np.ndarray:
    """P^(1/T) / Z at T = 0.5, per row (numpy in, numpy out)."""
    return tempered(torch.from_numpy(np.asarray(p, dtype=np.float64)), T).numpy()


def _tv(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return total_variation_rows(torch.from_numpy(p), torch.from_numpy(q)).numpy()


def _batch_law(p: np.ndarray, n: int, reps: int = 20_000) -> np.ndarray:
    """Law of the batch method's chosen component at P = p: E over batches of the selection
    probabilities (exact per batch), averaged over ``reps`` simulated batches."""
    g = torch.Generator().manual_seed(1234)
    keys = torch.multinomial(torch.tensor(p), reps * n, replacement=True, generator=g)
    keys = keys.view(reps, n)
    probs = selection_probabilities(keys, T)  # (reps, n) float64
    law = torch.zeros(K, dtype=torch.float64).index_add_(0, keys.reshape(-1), probs.reshape(-1))
    return (law / reps).numpy()


def _tolerance(p_hat: np.ndarray, law: np.ndarray, m2: int, reps: int = 20_000) -> float:
    rng = np.random.default_rng(0)
    out = rng.multinomial(m2, law, size=reps) / m2
    ref = _square(rng.multinomial(M1, p_hat, size=reps) / M1)
    return float(np.quantile(_tv(out, ref), QUANTILE))


def _frequencies(keys: torch.Tensor) -> np.ndarray:
    return frequencies(keys, K).numpy()


@pytest.fixture(scope="module", params=["ddpm", "flow"])
def demo(request):
    from implicit_temperature.demos import mixture

    load = mixture.load_ddpm_pipeline if request.param == "ddpm" else mixture.load_flow_pipeline
    pipe = load()
    sampler = TemperatureSampler(pipe, progress=False)
    x = sampler.adapter.draw(M1, generator=torch.Generator().manual_seed(1))
    p_hat = _frequencies(sampler.adapter.quantize(x))
    return request.param, sampler, p_hat


@pytest.mark.slow
@pytest.mark.parametrize("method", ["exact", "batch"])
def test_component_frequencies_at_half_temperature(demo, method):
    name, sampler, p_hat = demo
    expected_adapter = "diffusion" if name == "ddpm" else "flow_matching"
    assert sampler.adapter.name == expected_adapter
    assert (p_hat > 0.02).all(), f"demo model lost a component: {p_hat}"
    target = _square(p_hat)
    law = target if method == "exact" else _batch_law(p_hat, N_BATCH)
    tol = _tolerance(p_hat, law, M2[method])
    # the test has power: T = 1 frequencies are far outside the tolerance
    assert _tv(p_hat, target) > 2 * tol, (tol, p_hat)
    res = sampler.sample(T, method=method, num_samples=N_BATCH, num_outputs=M2[method], generator=7)
    assert res.samples.shape == (M2[method], 2)
    freq = _frequencies(res.keys)
    tv = float(_tv(freq, target))
    print(
        f"{name}/{method}: p_hat={p_hat.round(4)} target={target.round(4)} "
        f"freq={freq.round(4)} TV={tv:.4f} tol={tol:.4f} draws/output={res.draws / M2[method]}"
    )
    assert tv <= tol, f"{name}/{method}: TV {tv:.4f} > {tol:.4f}; freq {freq}, target {target}"
