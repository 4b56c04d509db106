"""The five sampling entry points take exactly the SampleOptions fields (their keyword lists,
validation and "did you mean" are derived from it, never hand-kept): ``temperature_sample``,
``TemperatureSampler.sample``, CALM ``generate``, ``with_temperature`` and ``itemp sample``."""

from __future__ import annotations

import argparse
import inspect

import pytest
import torch

import implicit_temperature as it
from implicit_temperature.core.errors import InvalidOptionError, UnknownOptionError
from implicit_temperature.core.options import SampleOptions, cli_options

NAMES = set(SampleOptions.names())


def option_params(fn) -> set[str]:
    """The keyword-only parameters of ``fn`` that are sampling options (its signature shows the
    derived options in place of ``**options``)."""
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name in NAMES}


def draw(n: int) -> torch.Tensor:
    return torch.randint(0, 3, (n,))


class ThreeOutcomes:
    """A minimal adapter instance: outcome ids 0..2, keys are the ids."""

    batched = False

    def draw(self, n, generator=None):
        return torch.randint(0, 3, (n,), generator=generator)

    def quantize(self, samples):
        return samples


def test_temperature_sample_takes_every_option_and_refuses_others():
    assert option_params(it.temperature_sample) == NAMES
    explicit = dict(SampleOptions.defaults(), generator=0)  # every option, by name
    res = it.temperature_sample(draw, 0.5, **explicit)
    assert res.samples.shape == (1,)
    with pytest.raises(UnknownOptionError, match="did you mean 'num_samples'"):
        it.temperature_sample(draw, 0.5, num_sample=10)
    with pytest.raises(InvalidOptionError, match="num_samples must be >= 1"):
        it.temperature_sample(draw, 0.5, num_samples=0)


def test_sampler_sample_takes_every_option_and_refuses_others():
    assert option_params(it.TemperatureSampler.sample) == NAMES
    sampler = it.TemperatureSampler(None, adapter=ThreeOutcomes())
    res = sampler.sample(0.5, **dict(SampleOptions.defaults(), generator=0))
    assert res.samples.shape == (1,)
    with pytest.raises(UnknownOptionError, match="did you mean 'max_draws'"):
        sampler.sample(0.5, max_draw=10)


def test_calm_generate_takes_the_options_that_apply_per_step():
    from implicit_temperature.adapters.calm.generation import _NOT_PER_STEP, generate
    from implicit_temperature.demos.calm import load_demo_model

    assert set(_NOT_PER_STEP) == {"num_outputs", "generator"}  # one output per step; own arg
    assert option_params(generate) == NAMES - {"num_outputs"}  # generator: its own argument
    assert "generator" in inspect.signature(generate).parameters
    model, tok = load_demo_model()
    ids = tok.encode("cat ")
    out = generate(model, ids, temperature=0.5, max_new_tokens=4, generator=0, **per_step())
    assert out.shape[0] == 1
    with pytest.raises(UnknownOptionError, match="num_outputs"):
        generate(model, ids, temperature=0.5, max_new_tokens=4, num_outputs=2)
    with pytest.raises(UnknownOptionError, match="did you mean 'tolerance'"):
        generate(model, ids, temperature=0.5, max_new_tokens=4, tolerence=0.1)


def per_step() -> dict:
    """Every option generate() takes per step, at its default."""
    from implicit_temperature.adapters.calm.generation import _NOT_PER_STEP

    return {k: v for k, v in SampleOptions.defaults().items() if k not in _NOT_PER_STEP}


def test_itemp_sample_flags_are_the_options_marked_for_the_cli():
    from implicit_temperature.jobs.args import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {a.dest for a in parser._actions}
    marked = {f.name for f in cli_options()}
    assert marked <= NAMES and marked <= flags
    assert marked == {"method", "plan", "num_samples", "num_outputs", "max_draws", "tolerance"}
    # the flags that are options are exactly the marked ones (no hand-kept copy of another)
    assert (flags & NAMES) - {"generator", "progress"} == marked


def test_with_temperature_takes_the_options_but_the_per_call_ones():
    pytest.importorskip("diffusers")
    from conftest import tiny_unet
    from diffusers import DDIMScheduler, DDPMPipeline

    from implicit_temperature.adapters.pipelines.wrapper import (
        NOT_WRAPPER_OPTIONS,
        WRAPPER_OPTIONS,
        with_temperature,
    )

    assert set(WRAPPER_OPTIONS) == NAMES - set(NOT_WRAPPER_OPTIONS)
    assert set(NOT_WRAPPER_OPTIONS) == {"num_outputs", "generator", "progress"}
    unet = tiny_unet()
    pipe = DDPMPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=50))
    pipe.set_progress_bar_config(disable=True)
    defaults = {n: SampleOptions.defaults()[n] for n in WRAPPER_OPTIONS}
    tpipe = with_temperature(pipe, num_inference_steps=2, **defaults)
    assert tpipe.options == SampleOptions()
    assert tpipe.call_kwargs == {"num_inference_steps": 2}
    tuned = with_temperature(pipe, num_inference_steps=2, estimator="jackknife", num_samples=8)
    assert tuned.options.estimator == "jackknife" and tuned.options.num_samples == 8
    with pytest.raises(UnknownOptionError, match="did you mean 'num_samples'"):
        with_temperature(pipe, num_inference_steps=2, num_sample=8)
    with pytest.raises(InvalidOptionError, match="estimator must be one of"):
        with_temperature(pipe, num_inference_steps=2, estimator="jackknif")
    with pytest.raises(TypeError, match="num_images_per_prompt"):
        with_temperature(pipe, num_inference_steps=2, num_outputs=2)
    with pytest.raises(UnknownOptionError, match="did you mean 'tolerance'"):
        tpipe(temperature=0.5, tolerence=0.1)
