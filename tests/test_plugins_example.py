"""Temperature through a third-party adapter: the example dice plugin, found by its entry point.

``TemperatureSampler(die)`` must find ``DiceAdapter`` through ``handles`` and return faces whose
law is P^(1/T) / Z: chi-square goodness of fit with fixed seeds at level ALPHA (conftest), plus a
power check that the same test rejects the untempered law.
"""

from __future__ import annotations

import pytest
import torch
from conftest import ALPHA, chi_square_pvalue, tempered

import implicit_temperature as it

try:
    from itemp_example_plugin import DiceAdapter, LoadedDie
except ImportError as exc:  # pragma: no cover - a setup problem, reported as a failure
    raise ImportError(
        "the example plugin is not installed: run `make setup` or `.venv/bin/python -m pip "
        "install -e examples/itemp-example-plugin`"
    ) from exc

FACES = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04], dtype=torch.float64)


@pytest.mark.parametrize("temperature, seed", [(0.5, 0), (0.7, 1)])
def test_dice_plugin_tempered_law(temperature, seed):
    n = 4000
    sampler = it.TemperatureSampler(LoadedDie(FACES))
    assert isinstance(sampler.adapter, DiceAdapter)
    res = sampler.sample(temperature, method="exact", num_outputs=n, generator=seed)
    assert res.samples.shape == (n,) and res.samples.dtype == torch.long
    pvalue = chi_square_pvalue(res.samples, tempered(FACES, temperature))
    assert pvalue > ALPHA, f"T={temperature}: chi-square p={pvalue:.3g} < alpha={ALPHA}"
    assert chi_square_pvalue(res.samples, FACES) < 1e-12, "the test must reject the untempered law"


def test_dice_plugin_same_seed_same_samples():
    sampler = it.TemperatureSampler(LoadedDie(FACES))
    a = sampler.sample(0.5, num_outputs=50, generator=123)
    b = sampler.sample(0.5, num_outputs=50, generator=123)
    assert torch.equal(a.samples, b.samples) and a.draws == b.draws


def test_dice_plugin_with_the_plugins_own_quantizer():
    """quantizer="example-parity" (registered by the same plugin): temperature on odd/even."""
    t, n = 0.5, 3000
    sampler = it.TemperatureSampler(LoadedDie(FACES), quantizer="example-parity")
    res = sampler.sample(t, num_outputs=n, generator=7)
    parity = res.samples % 2
    p_parity = torch.tensor([0.4 + 0.15 + 0.06, 0.25 + 0.1 + 0.04], dtype=torch.float64)
    pvalue = chi_square_pvalue(parity, tempered(p_parity, t))
    assert pvalue > ALPHA, pvalue
    assert chi_square_pvalue(parity, p_parity) < 1e-6
    # within a parity class the face keeps the model's own law: P(face | even) = P(face) / P(even)
    even = res.samples[parity == 0]
    within = torch.bincount(even // 2, minlength=3)
    target = FACES[[0, 2, 4]] / FACES[[0, 2, 4]].sum()
    pvalue_within = chi_square_pvalue(even // 2, target)
    assert within.sum() > 1000 and pvalue_within > ALPHA, pvalue_within
