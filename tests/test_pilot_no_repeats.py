"""A pilot without a single repeated key (a continuous draw): it grows at once to the size whose
collision floor rules exact out (one more draw request), and auto's batch pools are the pilot's
own draws (no fresh draws), with an AccuracyWarning (the accuracy is unknown)."""

from __future__ import annotations

import math

import pytest
import torch

import implicit_temperature as it
from implicit_temperature.core.pilot import deciding_pilot_size


def gaussian(m, generator=None):
    return torch.randn(m, generator=generator)


def test_deciding_size_is_the_least_whose_floor_exceeds_the_allowance():
    m = deciding_pilot_size(2000.0, 1, 1)  # floor C(M, 2) / 3 per output at k = 0
    assert m * (m - 1) / 6 > 2000 >= (m - 1) * (m - 2) / 6


@pytest.mark.parametrize("num_outputs", [1, 4])
def test_continuous_draw_takes_two_requests_and_reuses_the_pilot(num_outputs):
    with pytest.warns(it.AccuracyWarning):
        res = it.temperature_sample(gaussian, 0.5, num_outputs=num_outputs, generator=0)
    # allowance 10 x 200 per output: M(M - 1) > 12,000 -> M = 111, drawn as 16 then 95
    assert res.method == "batch" and res.model_calls == 2
    assert res.draws == res.pilot_draws == 111
    assert "pilot's own draws" in res.reason and math.isnan(res.estimated_tv)
