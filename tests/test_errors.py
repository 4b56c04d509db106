"""Bad input gets a clear error that names the fix; never a hang or a silent wrong answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import PEAKED, categorical_draw

import implicit_temperature as it

DRAW = categorical_draw(PEAKED)


@pytest.mark.parametrize("bad", [0, -0.5, math.nan, math.inf, -math.inf])
def test_temperature_must_be_finite_and_positive(bad):
    with pytest.raises(it.InvalidTemperatureError, match="finite number > 0"):
        it.temperature_sample(DRAW, bad)
    with pytest.raises(it.InvalidTemperatureError):
        it.select_from_batch(torch.zeros(1, 3, dtype=torch.long), bad)


@pytest.mark.parametrize("bad", ["0.5", None, True, [0.5]])
def test_temperature_must_be_a_number(bad):
    with pytest.raises(TypeError, match="temperature must be a real number"):
        it.temperature_sample(DRAW, bad)


@pytest.mark.parametrize("name", ["num_outputs", "num_samples", "max_lanes"])
@pytest.mark.parametrize("bad", [0, -3])
def test_counts_must_be_positive(name, bad):
    with pytest.raises(ValueError, match=f"{name} must be >= 1"):
        it.temperature_sample(DRAW, 0.5, method="batch", **{name: bad})


def test_counts_must_be_integers():
    with pytest.raises(TypeError, match="num_outputs must be an integer"):
        it.temperature_sample(DRAW, 0.5, num_outputs=2.5)


def test_unknown_method_and_estimator():
    with pytest.raises(ValueError, match="method must be one of"):
        it.temperature_sample(DRAW, 0.5, method="fast")
    with pytest.raises(ValueError, match="estimator must be one of"):
        it.temperature_sample(DRAW, 0.5, method="batch", estimator="magic")


@pytest.mark.parametrize("method", ["exact", "batch"])
def test_draw_returning_wrong_number_of_samples(method):
    with pytest.raises(it.SamplerOutputError, match=r"must return \d+ samples"):
        it.temperature_sample(lambda m: torch.zeros(m + 1, dtype=torch.long), 0.5, method=method)


def test_draw_returning_wrong_type():
    with pytest.raises(it.SamplerOutputError, match="torch.Tensor, numpy.ndarray or list"):
        it.temperature_sample(lambda m: 3, 0.5)


def test_batched_draw_with_wrong_shape():
    with pytest.raises(it.SamplerOutputError, match=r"\(B, 5, \.\.\.\)"):
        it.temperature_sample(
            lambda m: torch.zeros(m, 2, dtype=torch.long),
            0.5,
            batched=True,
            method="batch",
            num_samples=5,
        )


def test_nan_samples_are_refused():
    with pytest.raises(it.SamplerOutputError, match="NaN"):
        it.temperature_sample(lambda m: torch.full((m, 2), math.nan), 0.5)


def test_keys_must_be_integers():
    with pytest.raises(it.InvalidKeysError, match="integer keys"):
        it.temperature_sample(DRAW, 0.5, key=lambda x: x.float())
    with pytest.raises(it.InvalidKeysError, match="must be integers"):
        it.select_from_batch(torch.rand(2, 5), 0.5)
    with pytest.raises(it.InvalidKeysError, match="integer torch.Tensor"):
        it.temperature_sample(DRAW, 0.5, key=lambda x: [1] * len(x))


def test_keys_must_have_the_right_shape():
    with pytest.raises(it.InvalidKeysError, match=r"expected \(\d+,\) or \(\d+, d\)"):
        it.temperature_sample(DRAW, 0.5, key=lambda x: torch.zeros(len(x) + 1, dtype=torch.long))
    with pytest.raises(it.InvalidKeysError, match=r"\(B, N\) or \(B, N, d\)"):
        it.select_from_batch(torch.zeros(5, dtype=torch.long), 0.5)
    with pytest.raises(it.InvalidKeysError, match=r"\(B, N\) or \(B, N, d\)"):
        it.select_from_batch(torch.zeros(2, 3, 4, 5, dtype=torch.long), 0.5)


def test_key_width_must_not_change():
    calls = []

    def key(x):
        calls.append(1)
        return torch.zeros(len(x), len(calls), dtype=torch.long)

    with pytest.raises(it.InvalidKeysError, match="same width"):
        it.temperature_sample(
            categorical_draw(torch.tensor([0.5, 0.5])), 0.3, key=key, num_outputs=50
        )


def test_max_draws_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="max_draws must be >= 1"):
        it.temperature_sample(DRAW, 0.5, max_draws=0)
    with pytest.raises(TypeError, match="max_draws must be an integer"):
        it.temperature_sample(DRAW, 0.5, max_draws=1e6)


def test_unhashable_list_samples_need_a_key():
    with pytest.raises(it.InvalidKeysError, match="not hashable"):
        it.temperature_sample(lambda m: [[1, 2]] * m, 0.5)


def test_bad_generator():
    with pytest.raises(TypeError, match="generator must be"):
        it.temperature_sample(DRAW, 0.5, generator="seed")


def test_errors_share_a_base_class():
    for exc in (
        it.InvalidTemperatureError,
        it.SamplerOutputError,
        it.InvalidKeysError,
        it.DrawBudgetExceeded,
    ):
        assert issubclass(exc, it.ImplicitTemperatureError)
    assert np.issubdtype(np.int64, np.integer)
