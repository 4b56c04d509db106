"""The diffusion adapter on real diffusers classes built from config (random weights, no download).

Shapes, chunking, generator reproducibility, output types, prompts, quantizers, adapter
selection and the errors for bad input.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import (
    DDPMPipeline,
    DDPMScheduler,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
    UNet2DModel,
)
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput

from implicit_temperature.adapters.diffusion import DiffusionAdapter
from implicit_temperature.adapters.flow_matching import FlowMatchingAdapter, VelocityField
from implicit_temperature.core import SamplerOutputError
from implicit_temperature.demos.mixture import (
    MixtureDDPMPipeline,
    MixtureFlowMatchingPipeline,
    MLPDenoiser,
    NearestComponentQuantizer,
)
from implicit_temperature.plugins import (
    AdapterSelectionError,
    TemperatureSampler,
    get_adapter,
    plugin_errors,
)
from implicit_temperature.quantizers import ImageHashQuantizer, QuantizerError


def _tiny_ddpm() -> DDPMPipeline:
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    # 1000 training steps: DDPMPipeline's default of 1000 inference steps passes the adapter's
    # construction check; the tests that draw pass num_inference_steps=2
    return DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000))


@pytest.fixture(scope="module")
def ddpm() -> DDPMPipeline:
    return _tiny_ddpm()


def _brightness_label(x: torch.Tensor) -> torch.Tensor:
    return (x.mean(dim=(1, 2, 3)) > 0.5).long()


def _mixture_pipe(cls, scheduler):
    torch.manual_seed(0)
    return cls(
        denoiser=MLPDenoiser(hidden_dim=8, num_layers=1, time_embed_dim=4),
        scheduler=scheduler,
        mixture_means=[[2, 0], [-2, 0]],
        mixture_weights=[0.7, 0.3],
        mixture_std=0.3,
    )


class PromptPipeline(DiffusionPipeline):
    """A prompt-conditioned pipeline: image value = prompt index + small noise, (1, 2, 2)."""

    def __init__(self, scheduler) -> None:
        super().__init__()
        self.register_modules(scheduler=scheduler)
        self.calls: list[tuple] = []

    def __call__(self, prompt=None, num_images_per_prompt=1, generator=None, output_type="pt"):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        self.calls.append((len(prompts), num_images_per_prompt))
        base = torch.arange(len(prompts), dtype=torch.float32).repeat_interleave(
            num_images_per_prompt
        )
        noise = 0.01 * torch.randn(base.shape[0], 1, 2, 2, generator=generator)
        return ImagePipelineOutput(images=base[:, None, None, None] + noise)


# -- drawing -------------------------------------------------------------------------------


def test_draw_shapes_chunks_and_generator(ddpm):
    sizes: list[int] = []
    hook = ddpm.unet.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[0]))
    try:
        adapter = DiffusionAdapter(ddpm, batch_size=3, num_inference_steps=2, progress=False)
        x = adapter.draw(7, generator=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert x.shape == (7, 3, 8, 8) and x.dtype == torch.float32
    assert sizes == [3, 3, 3, 3, 1, 1]  # 3 pipeline calls (chunks 3, 3, 1) x 2 steps
    y = adapter.draw(7, generator=torch.Generator().manual_seed(0))
    z = adapter.draw(7, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, y)
    assert not torch.allclose(x, z)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_progress_bar_on_long_draws(capsys):
    pipe = PromptPipeline(DDPMScheduler(num_train_timesteps=10))
    DiffusionAdapter(pipe, prompt="x", batch_size=2).draw(6)  # 3 chunks: no bar by default
    assert "sample" not in capsys.readouterr().err
    DiffusionAdapter(pipe, prompt="x", batch_size=2).draw(8)  # 4 chunks: bar
    assert "8/8" in capsys.readouterr().err
    DiffusionAdapter(pipe, prompt="x", batch_size=2, progress=False).draw(8)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("output_type", ["pil", "np"])
def test_output_types_give_the_same_tensor(ddpm, output_type):
    ref = DiffusionAdapter(ddpm, num_inference_steps=2, output_type="pt").draw(
        4, generator=torch.Generator().manual_seed(3)
    )
    got = DiffusionAdapter(ddpm, num_inference_steps=2, output_type=output_type).draw(
        4, generator=torch.Generator().manual_seed(3)
    )
    assert got.shape == ref.shape == (4, 3, 8, 8)
    atol = 0.5 / 255 + 1e-6 if output_type == "pil" else 1e-6
    torch.testing.assert_close(got, ref, atol=atol, rtol=0)


def test_prompt_single_and_batched():
    pipe = PromptPipeline(DDPMScheduler(num_train_timesteps=10))
    adapter = DiffusionAdapter(pipe, prompt="a cat", batch_size=4, progress=False)
    assert not adapter.batched and adapter.num_problems is None
    assert adapter.draw(6, generator=torch.Generator().manual_seed(0)).shape == (6, 1, 2, 2)
    assert pipe.calls == [(1, 4), (1, 2)]
    pipe.calls.clear()
    adapter = DiffusionAdapter(
        pipe,
        prompt=["a", "b", "c"],
        batch_size=6,
        progress=False,
        quantizer=lambda x: x.mean(dim=(1, 2, 3)).round().long(),
    )
    assert adapter.batched and adapter.num_problems == 3
    x = adapter.draw(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 5, 1, 2, 2)
    assert pipe.calls == [(3, 2), (3, 2), (3, 1)]  # 6 images per call = 3 prompts x 2
    torch.testing.assert_close(
        x.mean(dim=(2, 3, 4)), torch.arange(3.0)[:, None].expand(3, 5), atol=0.05, rtol=0
    )  # prompt-major order kept
    keys = adapter.quantize(x)
    assert keys.shape == (3, 5) and torch.equal(keys, torch.arange(3)[:, None].expand(3, 5))
    res = TemperatureSampler(pipe, adapter=adapter).sample(0.5, num_outputs=4, generator=0)
    assert res.samples.shape == (3, 4, 1, 2, 2)


def test_batched_prompts_draw_only_active_ones():
    """The exact sampler passes active= to skip prompts that are done: only those are called."""
    pipe = PromptPipeline(DDPMScheduler(num_train_timesteps=10))
    adapter = DiffusionAdapter(pipe, prompt=["a", "b", "c"], batch_size=6, progress=False)
    x = adapter.draw(
        4, generator=torch.Generator().manual_seed(0), active=torch.tensor([True, False, True])
    )
    assert x.shape == (2, 4, 1, 2, 2)
    assert pipe.calls == [(2, 3), (2, 1)]  # 2 prompts x 3 images per call, then the rest


# -- quantizers ----------------------------------------------------------------------------


def test_image_hash_quantizer_known_keys():
    img = torch.zeros(3, 3, 8, 8)
    img[0, :, :, 4:] = 1.0  # right half bright: cells (r, c) with c >= 2 set
    img[1] = 0.3 + 0.5 * img[0]  # same layout, other brightness/contrast
    img[2, :, :4, :] = 1.0  # top half bright
    keys = ImageHashQuantizer(hash_size=4)(img)
    right = sum(1 << (4 * r + c) for r in range(4) for c in (2, 3))
    top = sum(1 << (4 * r + c) for r in (0, 1) for c in range(4))
    assert keys.dtype == torch.long and keys.tolist() == [right, right, top]
    assert ImageHashQuantizer(hash_size=8)(img).shape == (3, 64)
    assert ImageHashQuantizer()(img[:, 0]).tolist() == [right, right, top]  # (n, H, W)
    with pytest.raises(QuantizerError, match="grid"):
        ImageHashQuantizer()(torch.zeros(5, 2))


def test_default_quantizers(ddpm):
    adapter = DiffusionAdapter(ddpm, num_inference_steps=2)
    assert adapter.quantizer is None  # chosen from the first samples' shape
    keys = adapter.quantize(adapter.draw(5, generator=torch.Generator().manual_seed(0)))
    assert isinstance(adapter.quantizer, ImageHashQuantizer) and keys.shape == (5,)
    mix = _mixture_pipe(MixtureDDPMPipeline, DDPMScheduler(num_train_timesteps=10))
    assert isinstance(DiffusionAdapter(mix).quantizer, NearestComponentQuantizer)


def test_quantizer_by_name_object_and_callable(ddpm):
    x = DiffusionAdapter(ddpm, num_inference_steps=2).draw(
        6, generator=torch.Generator().manual_seed(0)
    )
    by_name = DiffusionAdapter(
        ddpm, quantizer="classifier", quantizer_options={"fn": _brightness_label}
    )
    by_callable = DiffusionAdapter(ddpm, quantizer=_brightness_label)
    by_object = DiffusionAdapter(ddpm, quantizer=ImageHashQuantizer(hash_size=2))
    assert torch.equal(by_name.quantize(x), _brightness_label(x))
    assert torch.equal(by_callable.quantize(x), _brightness_label(x))
    assert by_object.quantize(x).shape == (6,)
    registered = DiffusionAdapter(ddpm, quantizer="image_hash", quantizer_options={"hash_size": 2})
    assert torch.equal(registered.quantize(x), ImageHashQuantizer(hash_size=2)(x))
    assert isinstance(registered.quantizer, ImageHashQuantizer)


def test_codebook_quantizer_is_fitted_on_a_separate_pilot():
    mix = _mixture_pipe(MixtureFlowMatchingPipeline, FlowMatchEulerDiscreteScheduler())
    adapter = FlowMatchingAdapter(
        mix,
        quantizer="codebook",
        quantizer_options={"num_codes": 3},
        fit_samples=64,
        num_inference_steps=2,
    )
    keys = adapter.quantize(adapter.draw(10, generator=torch.Generator().manual_seed(0)))
    assert adapter.quantizer.fitted and keys.shape == (10,) and int(keys.max()) < 3


def test_temperature_sample_on_tiny_ddpm(ddpm):
    sampler = TemperatureSampler(
        ddpm, quantizer=_brightness_label, num_inference_steps=2, batch_size=64
    )
    assert sampler.adapter.name == "diffusion"
    res = sampler.sample(0.5, num_outputs=3, generator=0)
    again = sampler.sample(0.5, num_outputs=3, generator=0)
    assert res.samples.shape == (3, 3, 8, 8) and res.keys.shape == (3,)
    assert torch.equal(res.samples, again.samples)
    res = sampler.sample(0.5, method="batch", num_samples=8, num_outputs=2, generator=0)
    assert res.samples.shape == (2, 3, 8, 8)


# -- adapter selection ---------------------------------------------------------------------


def test_adapters_are_registered_and_selection_is_unambiguous(ddpm):
    assert get_adapter("diffusion") is DiffusionAdapter
    assert get_adapter("flow_matching") is FlowMatchingAdapter
    assert not [e for e in plugin_errors() if "diffusion" in e or "flow_matching" in e]
    ddpm_mix = _mixture_pipe(MixtureDDPMPipeline, DDPMScheduler(num_train_timesteps=10))
    flow_mix = _mixture_pipe(MixtureFlowMatchingPipeline, FlowMatchEulerDiscreteScheduler())
    heun_mix = _mixture_pipe(MixtureFlowMatchingPipeline, FlowMatchHeunDiscreteScheduler())
    for model, name in [
        (ddpm, "diffusion"),
        (ddpm_mix, "diffusion"),
        (flow_mix, "flow_matching"),
        (heun_mix, "flow_matching"),
        (VelocityField(lambda x, t: -x, (2,)), "flow_matching"),
    ]:
        assert TemperatureSampler(model).adapter.name == name
    assert not DiffusionAdapter.handles(flow_mix) and not FlowMatchingAdapter.handles(ddpm)
    with pytest.raises(AdapterSelectionError):
        TemperatureSampler(torch.nn.Linear(2, 2))  # a bare module: nobody claims it


def test_loading_the_plugins_does_not_import_diffusers():
    """handles() recognises pipelines through sys.modules, so plugin loading stays cheap."""
    import os
    import pathlib
    import subprocess
    import sys

    code = (
        "import sys, implicit_temperature.plugins as p\n"
        "assert {'diffusion', 'flow_matching'} <= set(p.get_adapters())\n"
        "print('diffusers' in sys.modules)\n"
    )
    root = str(pathlib.Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# -- bad input -----------------------------------------------------------------------------


def test_nan_outputs_name_the_fix():
    pipe = _tiny_ddpm()
    with torch.no_grad():
        pipe.unet.conv_out.bias.fill_(float("nan"))
    adapter = DiffusionAdapter(pipe, num_inference_steps=2, output_type="np")
    with pytest.raises(SamplerOutputError, match="NaN.*float32"):
        adapter.draw(2, generator=torch.Generator().manual_seed(0))


def test_quantizer_that_cannot_take_the_shape(ddpm):
    x = DiffusionAdapter(ddpm, num_inference_steps=2).draw(
        3, generator=torch.Generator().manual_seed(0)
    )
    bad = DiffusionAdapter(ddpm, quantizer=lambda s: torch.cdist(s, torch.zeros(4, 2)).argmin(1))
    with pytest.raises(QuantizerError, match=r"shape \(3, 3, 8, 8\).*\(n, C, H, W\)"):
        bad.quantize(x)
    wrong_len = DiffusionAdapter(ddpm, quantizer=lambda s: torch.zeros(2 * len(s), dtype=int))
    with pytest.raises(QuantizerError, match="one label per sample"):
        wrong_len.quantize(x)
    nearest = DiffusionAdapter(ddpm, quantizer=NearestComponentQuantizer(torch.zeros(4, 2)))
    with pytest.raises(QuantizerError, match=r"\(n, 2\)"):
        nearest.quantize(x)
    with pytest.raises(QuantizerError, match="registered quantizers"):
        DiffusionAdapter(ddpm, quantizer="no-such-quantizer")


def test_not_a_pipeline_and_bad_options(ddpm):
    with pytest.raises(TypeError, match="DiffusionPipeline.*flow_matching"):
        DiffusionAdapter(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"no argument\(s\) \['num_inference_stepz'\]"):
        DiffusionAdapter(ddpm, num_inference_stepz=2)
    with pytest.raises(TypeError, match="num_images_per_prompt"):
        DiffusionAdapter(ddpm, prompt="a cat")
    with pytest.raises(TypeError, match="prompt="):
        DiffusionAdapter(PromptPipeline(DDPMScheduler()))
    with pytest.raises(TypeError, match="set by the adapter"):
        DiffusionAdapter(ddpm, generator=torch.Generator())
    with pytest.raises(ValueError, match="batch_size"):
        DiffusionAdapter(ddpm, batch_size=0)
    flow_mix = _mixture_pipe(MixtureFlowMatchingPipeline, FlowMatchEulerDiscreteScheduler())
    with pytest.raises(TypeError, match="flow-matching"):
        FlowMatchingAdapter(ddpm)
    assert DiffusionAdapter(flow_mix).name == "diffusion"  # forcing it stays possible
