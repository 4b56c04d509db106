"""Diagnostics on every result, and a TemperatureWarning when temperature could not act."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

import implicit_temperature as it
from implicit_temperature.core.diagnostics import DISTINCT_WARN_SHARE, pool_statistics
from implicit_temperature.quantizers import resolve_quantizer

PROBS = torch.tensor([0.5, 0.3, 0.15, 0.05])


def gaussian(m, generator=None):
    return torch.randn(m, 2, generator=generator)


def uniform_square(m, generator=None):
    return torch.rand(m, 2, generator=generator)


def categorical(m, generator=None):
    return torch.multinomial(PROBS, m, replacement=True, generator=generator)


def test_all_distinct_batch_warns_with_actionable_message():
    with pytest.warns(it.TemperatureWarning) as record:
        res = it.temperature_sample(gaussian, 0.5, method="batch", generator=0)
    (w,) = record.list
    msg = str(w.message)
    assert "100% of the 200 samples were distinct" in msg
    assert "coarser quantizer" in msg and "classifier" in msg
    assert w.filename == __file__  # attributed to the caller, not to library internals
    d = res.diagnostics
    assert d.seen == "pool" and d.samples == 200
    assert int(d.distinct_keys) == 200 and float(d.singleton_share) == 1.0
    assert float(d.cascade_level) == 1.0


def test_warning_names_the_quantizer_and_can_be_filtered():
    with pytest.warns(it.TemperatureWarning, match="under quantizer image_hash"):
        it.temperature_sample(gaussian, 0.5, method="batch", generator=0, key_name="image_hash")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=it.TemperatureWarning)
        it.temperature_sample(gaussian, 0.5, method="batch", generator=0)
    assert issubclass(it.TemperatureWarning, UserWarning)
    assert it.core.TemperatureWarning is it.TemperatureWarning


@pytest.mark.parametrize(
    ("method", "temperature"),
    [("batch", 0.5), ("batch", 2.0), ("exact", 0.5), ("auto", 0.5), ("auto", 2.0)],
)
def test_collision_rich_law_does_not_warn(method, temperature):
    with warnings.catch_warnings():
        warnings.simplefilter("error", it.TemperatureWarning)
        res = it.temperature_sample(
            categorical, temperature, method=method, num_outputs=20, generator=1
        )
    d = res.diagnostics
    assert d is not None and d.samples > 0
    assert (d.distinct_keys <= 4).all() and d.distinct_share < DISTINCT_WARN_SHARE


@pytest.mark.parametrize("method", ["batch", "exact"])
def test_one_key_covering_everything_warns(method):
    huge_cell = resolve_quantizer("grid", cell_size=10.0)  # [0, 1)^2 lies in one cell
    with pytest.warns(it.TemperatureWarning, match="had the same key") as record:
        res = it.temperature_sample(
            uniform_square,
            0.5,
            key=huge_cell,
            method=method,
            num_outputs=30,
            generator=2,
            key_name="grid",
        )
    assert "finer quantizer" in str(record.list[0].message)
    assert "under quantizer grid" in str(record.list[0].message)
    assert res.diagnostics.one_key


def test_no_warning_at_t_equal_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error", it.TemperatureWarning)
        it.temperature_sample(gaussian, 1.0, method="batch", generator=0)


def test_batched_diagnostics_shapes_and_values():
    def draw(m, generator=None):  # problem 0: 4 outcomes; problem 1: all distinct
        a = torch.multinomial(PROBS, m, replacement=True, generator=generator).double()
        b = torch.randn(m, generator=generator, dtype=torch.float64)
        return torch.stack([a, b])

    with pytest.warns(it.TemperatureWarning):
        pass_ = it.temperature_sample(
            draw, 0.5, method="batch", batched=True, num_samples=100, num_outputs=3, generator=3
        )
    d = pass_.diagnostics
    assert d.distinct_keys.shape == (2, 3) and d.singleton_share.shape == (2, 3)
    assert (d.distinct_keys[0] <= 4).all() and (d.distinct_keys[1] == 100).all()
    assert d.cascade_level.shape == (2, 3)


def test_pool_statistics_against_python():
    counts = torch.tensor([[1, 2, 2, 3, 3, 3], [6, 6, 6, 6, 6, 6]])
    distinct, singles = pool_statistics(counts)
    assert distinct.tolist() == [3, 1]
    assert singles.tolist() == [1 / 6, 0.0]


def test_repr_shows_shapes_not_samples():
    res = it.temperature_sample(categorical, 0.5, method="exact", num_outputs=5000, generator=4)
    text = repr(res)
    assert "shape=(5000,)" in text and "method='exact'" in text and "diagnostics=" in text
    assert len(text) < 600
    assert "tensor([" not in text


def test_progress_information_goes_to_logging(caplog):
    with caplog.at_level(logging.INFO, logger="implicit_temperature"):
        it.temperature_sample(categorical, 0.5, method="exact", generator=5)
    assert any(r.name.startswith("implicit_temperature") for r in caplog.records)


def test_sampler_passes_its_quantizer_name():
    class Model:
        pass

    class Adapter(it.Adapter):
        name = "test-diag"

        def __init__(self, model, **options):
            super().__init__(model)
            self.quantizer = resolve_quantizer("grid", cell_size=1e-9)
            self.quantizer.name = "fine-grid"

        @classmethod
        def handles(cls, model):
            return isinstance(model, Model)

        def draw(self, n, generator=None):
            return gaussian(n, generator)

        def quantize(self, samples):
            return self.quantizer(samples)

    sampler = it.TemperatureSampler(Model(), adapter=Adapter)
    with pytest.warns(it.TemperatureWarning, match="under quantizer fine-grid"):
        sampler.sample(0.5, method="batch", generator=0)
