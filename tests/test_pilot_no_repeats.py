"""A pilot without a single repeated key (a continuous draw): its growth is drawn in one request
(prefetched, then used step by step exactly as before), and auto's batch pools are the pilot's
own draws (no fresh draws), with an AccuracyWarning (the accuracy is unknown)."""

from __future__ import annotations

import math

import pytest
import torch

import implicit_temperature as it
from implicit_temperature.core.drawing import DrawSource


def gaussian(m, generator=None):
    return torch.randn(m, generator=generator)


@pytest.mark.parametrize("num_outputs", [1, 4])
def test_continuous_draw_takes_two_requests_and_reuses_the_pilot(num_outputs):
    calls = []

    def draw(m, generator=None):
        calls.append(m)
        return gaussian(m, generator)

    with pytest.warns(it.AccuracyWarning):
        res = it.temperature_sample(draw, 0.5, num_outputs=num_outputs, generator=0)
    # the pilot would grow 16 -> 32 -> 64 -> 128 (C(128, 2) / 3 per output beyond 10 x 200 x
    # outputs at 4 outputs; at 1 output the share of the batch cost ends it): drawn as 16 + 112
    assert res.method == "batch" and res.model_calls == 2 and calls[0] == 16
    assert res.draws == res.pilot_draws == sum(calls) == 128
    assert "pilot's own draws" in res.reason and math.isnan(res.estimated_tv)


def test_prefetched_draws_are_served_in_order_then_fresh():
    source = DrawSource(
        lambda m, generator=None: torch.arange(m),
        None,
        batched=False,
        generator=torch.Generator().manual_seed(0),
    )
    source.prefetch(10)
    assert source.calls == 1 and source.draws == 10 and source.buffered_draws == 10
    first, k1 = source(4)
    second, k2 = source(8)  # 6 from the buffer, 2 fresh
    assert source.calls == 2 and source.draws == 12 and source.buffered_draws == 0
    served = torch.cat([k1[0, :, 0], k2[0, :6, 0]])
    assert sorted(served.tolist()) == list(range(10))  # each prefetched draw exactly once
    assert sorted(k2[0, 6:, 0].tolist()) == [0, 1]


@pytest.mark.parametrize("temperature", [0.5, 0.25])
def test_law_with_repeats_is_unchanged(temperature):
    """A law whose first 16 draws repeat a key never prefetches: same draws and keys as a run
    that cannot (the source's prefetch disabled)."""
    probs = torch.tensor([0.4, 0.3, 0.2, 0.1])

    def draw(m, generator=None):
        return torch.multinomial(probs, m, replacement=True, generator=generator)

    res = it.temperature_sample(draw, temperature, num_outputs=50, generator=5)
    original = DrawSource.prefetch
    try:
        DrawSource.prefetch = lambda self, m: None  # type: ignore[method-assign]
        ref = it.temperature_sample(draw, temperature, num_outputs=50, generator=5)
    finally:
        DrawSource.prefetch = original  # type: ignore[method-assign]
    assert res.draws == ref.draws and res.model_calls == ref.model_calls
    assert torch.equal(res.keys, ref.keys)
