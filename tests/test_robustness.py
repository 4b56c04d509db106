"""Unusual but legal draws get the right law; unusable ones get a library error naming the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ALPHA, PEAKED, categorical_draw, chi_square_pvalue, tempered, total_variation

import implicit_temperature as it
from implicit_temperature.core import SamplerOutputError
from implicit_temperature.core.errors import InvalidSeedError

# -- item 3: samples that are 0-d tensors in a list are compared by value ------------------------


def test_list_of_zero_dim_tensors_is_compared_by_value():
    """torch.Tensor hashes by identity: every sample used to be its own outcome, so the batch
    method silently returned P. Now equal values are one outcome and the law is P^(1/T)."""
    base = categorical_draw(PEAKED)

    def draw(m, generator=None):
        return [torch.tensor(int(v)) for v in base(m, generator)]

    res = it.temperature_sample(
        draw, 0.5, method="batch", num_samples=50, num_outputs=3000, generator=11
    )
    outcomes = torch.stack(list(res.samples))
    # batch at N=50, T=0.5 is within TV ~0.01 of P_T; P itself is 0.2 away
    assert total_variation(outcomes, tempered(PEAKED, 0.5)) < 0.03
    assert int(res.diagnostics.distinct_keys.max()) <= 4


def test_lists_of_tensors_and_arrays_intern_by_dtype_shape_and_value():
    samples = [
        torch.tensor([1.0, 2.0]),
        torch.tensor([1.0, 2.0]),
        np.array([1, 2]),
        np.array([1, 2]),
        torch.tensor(3),
        torch.tensor(3.0),
    ]
    res = it.temperature_sample(
        lambda m: samples[:m], 1.0, method="batch", num_samples=6, generator=0
    )
    d = res.diagnostics
    assert int(d.distinct_keys) == 4  # two pairs, then int 3 and float 3.0 (different dtypes)


def test_objects_compared_by_identity_are_refused():
    class Thing:
        pass

    with pytest.raises(it.InvalidKeysError, match="compare by identity.*key="):
        it.temperature_sample(lambda m: [Thing() for _ in range(m)], 0.5, method="batch")


# -- item 4: the order of a draw's samples does not matter ----------------------------------------


def sorted_draw(m, generator=None):
    """An i.i.d. set returned sorted (as GaussianMixture.sample returns it grouped by component)."""
    return torch.sort(categorical_draw(PEAKED)(m, generator)).values


def test_sorted_sampler_exact_law():
    res = it.temperature_sample(sorted_draw, 0.5, method="exact", num_outputs=4000, generator=12)
    assert chi_square_pvalue(res.samples, tempered(PEAKED, 0.5)) > ALPHA


def test_sorted_sampler_exact_law_batched():
    def draw(m, generator=None):  # two problems, both sorted
        return torch.stack([sorted_draw(m, generator), sorted_draw(m, generator)])

    res = it.temperature_sample(
        draw, 0.4, method="exact", batched=True, num_outputs=2000, generator=13
    )
    assert chi_square_pvalue(res.samples.flatten(), tempered(PEAKED, 0.4)) > ALPHA


def test_sorted_sampler_batch_law_with_one_pool_per_output():
    """One draw call holds every output's pool: sorted, the first pools held only outcome 0."""
    res = it.temperature_sample(
        sorted_draw, 0.5, method="batch", num_samples=100, num_outputs=2000, generator=14
    )
    assert total_variation(res.samples, tempered(PEAKED, 0.5)) < 0.03


# -- item 5 is in test_quantizers.py; item 6: dtype drift -----------------------------------------


@pytest.mark.parametrize("dtypes", [(torch.float32, torch.int64), (torch.float32, torch.float64)])
def test_dtype_drift_between_calls_is_refused(dtypes):
    calls = []

    def draw(m, generator=None):
        calls.append(m)
        x = categorical_draw(PEAKED)(m, generator)
        return x.to(dtypes[len(calls) % 2])

    with pytest.raises(SamplerOutputError, match="same type, dtype"):
        it.temperature_sample(draw, 0.5, method="exact", num_outputs=50, generator=0)


def test_sample_shape_drift_between_ndarray_calls_is_refused():
    calls = []

    def draw(m, generator=None):
        calls.append(m)
        return np.zeros((m, 1 + len(calls) % 2))

    with pytest.raises(SamplerOutputError, match="sample shape"):
        it.temperature_sample(draw, 0.5, method="exact", num_outputs=5, generator=0)


# -- item 12: errors that name the fix -------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [np.array(["a", "b"] * 10), np.array([{"x": 1}] * 20, dtype=object), np.array([b"a"] * 20)],
)
def test_numpy_object_and_string_arrays_need_a_list_or_key(array):
    with pytest.raises(SamplerOutputError, match=r"tolist\(\)|key="):
        it.temperature_sample(lambda m: array[:m], 0.5, method="batch", num_samples=20)


def test_numpy_string_array_works_with_a_key():
    arr = np.array(["a", "b", "a", "a"] * 5)
    res = it.temperature_sample(
        lambda m: arr[:m],
        0.5,
        method="batch",
        num_samples=20,
        key=lambda s: torch.as_tensor(s == "a").long(),
        generator=0,
    )
    assert res.samples.dtype.kind == "U"


@pytest.mark.parametrize("seed", [2**64, 2**70, -(2**63) - 1])
def test_integer_seed_beyond_64_bits(seed):
    with pytest.raises(InvalidSeedError, match="64 bits"):
        it.temperature_sample(categorical_draw(PEAKED), 0.5, generator=seed)
    with pytest.raises(InvalidSeedError, match="64 bits"):
        it.select_from_batch(torch.zeros(1, 5, dtype=torch.long), 0.5, generator=seed)


def test_largest_64_bit_seed_works():
    def run(seed):
        draw = categorical_draw(PEAKED)
        return it.temperature_sample(draw, 0.5, method="batch", num_outputs=64, generator=seed)

    top = run(2**64 - 1)
    assert torch.equal(top.keys, run(2**64 - 1).keys)  # the same seed, the same result
    assert not torch.equal(top.keys, run(2**64 - 2).keys)  # a different seed, another one


def test_samples_on_the_meta_device():
    with pytest.raises(SamplerOutputError, match="meta device"):
        it.temperature_sample(lambda m: torch.zeros(m, 2, device="meta"), 0.5, method="batch")
    with pytest.raises(SamplerOutputError, match="meta device"):
        it.temperature_sample(lambda m: [torch.zeros((), device="meta")] * m, 0.5, method="batch")


def test_keys_on_the_meta_device():
    with pytest.raises(it.InvalidKeysError, match="meta device"):
        it.temperature_sample(
            categorical_draw(PEAKED),
            0.5,
            method="batch",
            key=lambda x: torch.zeros(x.shape[0], dtype=torch.long, device="meta"),
        )


def test_zero_problems():
    with pytest.raises(SamplerOutputError, match="B=0 problems"):
        it.temperature_sample(lambda m: torch.zeros(0, m), 0.5, method="batch", batched=True)
    with pytest.raises(it.InvalidKeysError, match="B, N, d >= 1"):
        it.select_from_batch(torch.zeros(0, 5, dtype=torch.long), 0.5)
