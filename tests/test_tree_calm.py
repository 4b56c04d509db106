"""Collision trees reach CALM decoding through the core: generate() defaults to method="auto",
passes plan=, and exact decoding at low T uses a tree (no per-adapter code)."""

from __future__ import annotations

import pytest
import torch

from implicit_temperature.adapters.calm import generate
from implicit_temperature.demos.calm import load_demo_model


@pytest.fixture(scope="module")
def demo():
    return load_demo_model()


def test_generate_defaults_to_auto_at_any_temperature(demo):
    model, tok = demo
    ids = torch.cat([tok.encode("cat ")] * 2)
    out = generate(
        model, ids, temperature=1.5, max_new_tokens=8, generator=0, return_dict_in_generate=True
    )
    assert out.sequences.shape == (2, 12)
    assert len(out.cascade_levels) == out.steps  # T > 1: auto used the batch method


def test_generate_exact_with_a_tree_plan(demo, monkeypatch):
    """plan= reaches temperature_sample; a tree plan at T = 0.25 decodes for B prompts."""
    import implicit_temperature.adapters.calm.generation as generation

    seen = []
    original = generation.temperature_sample

    def spy(*args, **kwargs):
        res = original(*args, **kwargs)
        seen.append((kwargs.get("plan"), res.method, res.plan))
        return res

    monkeypatch.setattr(generation, "temperature_sample", spy)
    model, tok = demo
    ids = torch.cat([tok.encode("cat "), tok.encode("dog ")])
    out = generate(
        model,
        ids,
        temperature=0.25,
        method="exact",
        plan="2*2",
        max_new_tokens=8,
        generator=0,
        return_dict_in_generate=True,
    )
    assert out.sequences.shape == (2, 12) and out.draws >= 2 * out.steps * 4
    assert seen and all(s == ("2*2", "exact", "2*2") for s in seen)
