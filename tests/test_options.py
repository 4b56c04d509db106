"""Keywords: an unknown or misplaced one is named where it was written, with the closest valid
name; quantizer options have one way in (``quantizer_options=``) everywhere."""

from __future__ import annotations

import pytest
import torch
from conftest import ALPHA, chi_square_pvalue, tempered
from diffusers import DDPMScheduler, DiffusionPipeline
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from test_diffusion_adapter import _tiny_ddpm
from test_plugins import example_entry_point

import implicit_temperature as it
from implicit_temperature.adapters.diffusion import DiffusionAdapter
from implicit_temperature.adapters.flow_matching import FlowMatchingAdapter, VelocityField
from implicit_temperature.plugins.options import UnknownOptionError
from implicit_temperature.quantizers import QuantizerError, resolve_quantizer


@pytest.fixture(scope="module")
def pipe():
    return _tiny_ddpm()


class KwargsPipeline(DiffusionPipeline):
    """A pipeline whose __call__ takes **kwargs (like many diffusers pipelines)."""

    def __init__(self, scheduler) -> None:
        super().__init__()
        self.register_modules(scheduler=scheduler)
        self.seen: dict = {}

    def __call__(self, batch_size=1, generator=None, output_type="pt", **kwargs):
        self.seen = kwargs
        return ImagePipelineOutput(images=torch.rand(batch_size, 2, generator=generator))


# -- item 13: wrong keywords -----------------------------------------------------------------------
def test_misspelled_adapter_option_is_not_a_pipeline_error(pipe):
    with pytest.raises(UnknownOptionError) as info:
        it.TemperatureSampler(pipe, quantiser="grid")
    msg = str(info.value)
    assert "unknown keyword 'quantiser' passed to the 'diffusion' adapter" in msg
    assert "did you mean 'quantizer'?" in msg
    assert isinstance(info.value, TypeError)


def test_misspelled_pipeline_argument_gets_a_suggestion(pipe):
    with pytest.raises(UnknownOptionError, match="did you mean 'num_inference_steps'"):
        it.TemperatureSampler(pipe, num_inference_stepz=2)


def test_temperature_in_the_constructor_is_sent_to_sample(pipe):
    with pytest.raises(UnknownOptionError, match=r"argument of sample\(\).*sampler.sample\(0.5\)"):
        it.TemperatureSampler(pipe, temperature=0.5)
    with pytest.raises(UnknownOptionError, match=r"sampler.sample\(0.5, num_outputs=4\)"):
        it.TemperatureSampler(pipe, num_outputs=4)


def test_unknown_sample_keyword_names_sample_not_the_internal_function(pipe):
    sampler = it.TemperatureSampler(pipe, num_inference_steps=2)
    with pytest.raises(UnknownOptionError) as info:
        sampler.sample(0.5, batch_size=4)
    msg = str(info.value)
    assert "TemperatureSampler.sample() got an unknown keyword 'batch_size'" in msg
    assert "TemperatureSampler(model, batch_size=...)" in msg
    assert "temperature_sample" not in msg
    with pytest.raises(UnknownOptionError, match="did you mean 'num_samples'"):
        sampler.sample(0.5, num_sample=10)


def test_pipelines_with_var_keyword_still_catch_typos_and_misplaced_options():
    kw = KwargsPipeline(DDPMScheduler())
    with pytest.raises(UnknownOptionError, match="did you mean 'quantizer'"):
        DiffusionAdapter(kw, quantizr="grid")
    with pytest.raises(UnknownOptionError, match="quantizer_options="):
        DiffusionAdapter(kw, cell_size=0.5)
    adapter = DiffusionAdapter(kw, guidance=3.0)  # the pipeline's own **kwargs: passed through
    adapter.draw(2, torch.Generator().manual_seed(0))
    assert kw.seen == {"guidance": 3.0}


def test_velocity_field_typo():
    field = VelocityField(lambda x, t: -x, sample_shape=(2,))
    with pytest.raises(UnknownOptionError, match="did you mean 'num_steps'"):
        FlowMatchingAdapter(field, num_step=3)


def test_adapter_without_var_keyword_reports_the_closest_option():
    example_entry_point()
    from itemp_example_plugin import LoadedDie

    with pytest.raises(UnknownOptionError, match="did you mean 'quantizer'"):
        it.TemperatureSampler(LoadedDie([0.5, 0.5]), quantiser="exact")
    with pytest.raises(UnknownOptionError, match="'grid' quantizer.*quantizer_options"):
        it.TemperatureSampler(LoadedDie([0.5, 0.5]), cell_size=2)


# -- item 14: quantizer options, one way everywhere -----------------------------------------------
def test_missing_quantizer_option_names_it_and_the_way_to_pass_it(pipe):
    with pytest.raises(QuantizerError) as info:
        it.TemperatureSampler(pipe, quantizer="grid")
    msg = str(info.value)
    assert "needs the option(s) cell_size" in msg
    assert "quantizer_options={'cell_size': ...}" in msg
    assert "__init__()" not in msg
    with pytest.raises(QuantizerError, match="needs the option"):
        resolve_quantizer("grid")


def test_quantizer_option_as_a_keyword_is_not_forwarded_to_the_pipeline(pipe):
    with pytest.raises(UnknownOptionError, match=r"quantizer_options=\{'cell_size': 0.5\}"):
        it.TemperatureSampler(pipe, quantizer="grid", cell_size=0.5)


def test_quantizer_options_work_for_the_diffusion_adapter(pipe):
    sampler = it.TemperatureSampler(
        pipe, quantizer="grid", quantizer_options={"cell_size": 0.5}, num_inference_steps=2
    )
    assert sampler.adapter.quantizer.name == "grid"
    x = torch.rand(3, 3, 8, 8)
    assert torch.equal(sampler.adapter.quantize(x), torch.floor(x / 0.5).long().flatten(1))


def test_quantizer_options_in_the_example_plugin_and_the_law():
    """quantizer="grid", quantizer_options={"cell_size": 2} pairs the die's faces: exact
    temperature then acts on the pairs, P(pair)^2 (chi-square)."""
    example_entry_point()
    from itemp_example_plugin import LoadedDie

    probs = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04], dtype=torch.float64)
    sampler = it.TemperatureSampler(
        LoadedDie(probs.tolist()), quantizer="grid", quantizer_options={"cell_size": 2}
    )
    res = sampler.sample(0.5, method="exact", num_outputs=3000, generator=21)
    pairs = probs.view(3, 2).sum(1)
    assert chi_square_pvalue(res.keys, tempered(pairs, 0.5)) > ALPHA
    assert chi_square_pvalue(res.keys, pairs) < ALPHA  # the test can fail
