"""The flow_matching adapter: velocity-field solvers, options and errors, and the demo models
(save_pretrained/from_pretrained round trip, offline loading, the CLI demos)."""

from __future__ import annotations

import argparse
import math

import pytest
import torch

from implicit_temperature.adapters.flow_matching import (
    FlowMatchingAdapter,
    VelocityField,
    integrate,
)
from implicit_temperature.core import SamplerOutputError
from implicit_temperature.demos.mixture import DEMO_MEANS, DEMO_WEIGHTS
from implicit_temperature.plugins import TemperatureSampler


@pytest.mark.parametrize("steps", [1, 4, 10])
def test_solvers_match_their_closed_forms(steps):
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def grow(x, t):  # dx/dt = x: exact x0 * e
        assert t.shape == (x.shape[0],)
        return x

    h = 1.0 / steps
    euler = integrate(grow, x0, num_steps=steps, solver="euler")
    heun = integrate(grow, x0, num_steps=steps, solver="heun")
    torch.testing.assert_close(euler, x0 * (1 + h) ** steps)
    torch.testing.assert_close(heun, x0 * (1 + h + h * h / 2) ** steps)
    assert abs(float((heun / x0).mean()) - math.e) < abs(float((euler / x0).mean()) - math.e)
    shift = integrate(
        lambda x, t: torch.ones_like(x) * 2 * t[:, None], x0, num_steps=steps, solver="heun"
    )  # dx/dt = 2t: Heun (trapezoid) is exact
    torch.testing.assert_close(shift, x0 + 1.0)


def test_velocity_field_adapter_draws_and_chunks():
    calls: list[int] = []

    def v(x, t):
        calls.append(x.shape[0])
        return -x

    adapter = FlowMatchingAdapter(
        v,
        sample_shape=(2,),
        num_steps=3,
        batch_size=4,
        quantizer="grid",
        quantizer_options={"cell_size": 0.1},
        progress=False,
    )
    x = adapter.draw(10, generator=torch.Generator().manual_seed(0))
    assert x.shape == (10, 2) and calls == [4] * 3 + [4] * 3 + [2] * 3
    noise = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))  # the first chunk
    torch.testing.assert_close(x[:4], noise * (1 - 1 / 3) ** 3)  # Euler on dx/dt = -x
    assert torch.equal(x, adapter.draw(10, generator=torch.Generator().manual_seed(0)))
    assert adapter.quantize(x).shape == (10, 2)
    res = TemperatureSampler(
        VelocityField(v, (2,)), quantizer=lambda s: (s[:, 0] > 0).long(), num_steps=2
    ).sample(0.5, num_outputs=6, generator=1)
    assert res.samples.shape == (6, 2)


def test_velocity_field_errors():
    with pytest.raises(TypeError, match="sample_shape"):
        FlowMatchingAdapter(lambda x, t: x)
    with pytest.raises(TypeError, match="apply to diffusers pipelines"):
        FlowMatchingAdapter(lambda x, t: x, sample_shape=(2,), num_inference_steps=3)
    with pytest.raises(TypeError, match="velocity field"):
        FlowMatchingAdapter(42)
    with pytest.raises(ValueError, match="solver"):
        FlowMatchingAdapter(lambda x, t: x, sample_shape=(2,), solver="rk4")
    bad_shape = FlowMatchingAdapter(lambda x, t: x[:, :1], sample_shape=(2,), num_steps=2)
    with pytest.raises(ValueError, match="shaped like x"):
        bad_shape.draw(3)
    nan = FlowMatchingAdapter(lambda x, t: x / 0 * 0, sample_shape=(2,), num_steps=2)
    with pytest.raises(SamplerOutputError, match="NaN"):
        nan.draw(3)
    no_default = FlowMatchingAdapter(lambda x, t: x, sample_shape=(2,), num_steps=1)
    with pytest.raises(ValueError, match="no default quantizer.*grid"):
        no_default.quantize(no_default.draw(3))


def test_diffusers_flow_denoiser_as_velocity_field():
    """The documented wrapper turns diffusers' convention (sigma = 1 is noise) into ours: the
    shipped flow denoiser integrated by our Euler solver lands on the mixture (a sign or time
    error would scatter the samples)."""
    from implicit_temperature.demos.mixture import NearestComponentQuantizer, load_flow_pipeline

    pipe = load_flow_pipeline()
    net = pipe.denoiser
    field = VelocityField(lambda x, t: -net(x, 1000 * (1 - t)), (2,))
    sampler = TemperatureSampler(field, num_steps=20)
    assert sampler.adapter.name == "flow_matching"
    adapter = FlowMatchingAdapter(
        field, num_steps=20, quantizer=NearestComponentQuantizer(pipe.mixture_means)
    )
    x = adapter.draw(2000, generator=torch.Generator().manual_seed(0))
    dist = (x - pipe.mixture_means[adapter.quantize(x)]).norm(dim=1)
    assert float((dist < 4 * pipe.mixture_std).double().mean()) > 0.97


# -- the shipped demo models -----------------------------------------------------------------


@pytest.fixture(scope="module", params=["diffusion", "flow_matching"])
def shipped(request):
    from implicit_temperature.demos import mixture

    loaders = {"diffusion": mixture.load_ddpm_pipeline, "flow_matching": mixture.load_flow_pipeline}
    load = loaders[request.param]
    return request.param, load()


def test_shipped_demo_pipelines(shipped, tmp_path):
    name, pipe = shipped
    assert pipe.mixture_means.shape == (4, 2) and pipe.mixture_weights.shape == (4,)
    torch.testing.assert_close(pipe.mixture_means, torch.tensor(DEMO_MEANS))
    torch.testing.assert_close(pipe.mixture_weights, torch.tensor(DEMO_WEIGHTS))
    assert TemperatureSampler(pipe).adapter.name == name
    from implicit_temperature.demos.mixture.loading import load_pipeline

    pipe.save_pretrained(tmp_path)
    again = load_pipeline(type(pipe), tmp_path, None, None)  # from_pretrained, offline, quiet
    assert (tmp_path / "denoiser" / "diffusion_pytorch_model.safetensors").is_file()
    a = pipe(64, generator=torch.Generator().manual_seed(0)).samples
    b = again(64, generator=torch.Generator().manual_seed(0)).samples
    assert a.shape == (64, 2) and torch.equal(a, b)


@pytest.mark.parametrize("module", ["diffusion_demo", "flow_demo"])
def test_cli_demo_runs(module, tmp_path, capsys):
    import importlib

    demo = importlib.import_module(f"implicit_temperature.demos.mixture.{module}")
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    defaults = parser.parse_args([])
    name = module.split("_")[0]
    assert defaults.temperature == 0.5 and defaults.default_out == f"demo-{name}.png"
    out = tmp_path / "demo.png"
    args = parser.parse_args(["--num-outputs", "200", "--num-samples", "20", "--out", str(out)])
    assert demo.run(args) == 0
    text = capsys.readouterr().out
    assert "TV to target" in text and "noise x0.5" in text and "exact" in text
    assert out.is_file() and out.stat().st_size > 10_000
