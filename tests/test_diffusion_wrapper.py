"""Diffusers-native use: ``with_temperature(pipe)(..., temperature=T)`` returns the pipeline's own
output class (PIL images for image pipelines), checks pipeline arguments at construction, takes
one generator per prompt, and fits its quantizer on request.

Pipelines here are built from config with untrained weights: these tests check the plumbing; the
law of the tempered images is tested on the trained digits model in test_digits_temperature.py.
"""

from __future__ import annotations

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from conftest import tiny_unet  # noqa: E402
from diffusers import (  # noqa: E402
    DDIMScheduler,
    DDPMPipeline,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    ImagePipelineOutput,
)
from diffusers.utils.torch_utils import randn_tensor  # noqa: E402

from implicit_temperature.adapters.diffusion import (  # noqa: E402
    TemperaturePipeline,
    with_temperature,
)
from implicit_temperature.plugins import TemperatureSampler  # noqa: E402


def ddpm_pipeline(train_steps: int = 1000) -> DDPMPipeline:
    pipe = DDPMPipeline(unet=tiny_unet(), scheduler=DDIMScheduler(num_train_timesteps=train_steps))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bright(images: torch.Tensor) -> torch.Tensor:
    """A 2-outcome key: is the image brighter than mid-grey on average?"""
    return (images.float().mean(dim=(1, 2, 3)) > 0.5).long()


class FlowImagePipeline(DiffusionPipeline):
    """A minimal flow-matching image pipeline (Euler steps of a UNet velocity)."""

    def __init__(self, unet, scheduler) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        generator=None,
        num_inference_steps: int = 4,
        output_type: str = "pil",
        return_dict: bool = True,
    ):
        x = randn_tensor((batch_size, 1, 8, 8), generator=generator)
        self.scheduler.set_timesteps(num_inference_steps)
        for t in self.scheduler.timesteps:
            x = self.scheduler.step(self.unet(x, t).sample, t, x).prev_sample
        x = (x / 2 + 0.5).clamp(0, 1)
        images = x.permute(0, 2, 3, 1).numpy()
        if output_type == "pil":
            images = self.numpy_to_pil(images)
        return ImagePipelineOutput(images=images) if return_dict else (images,)


class PromptPipeline(DiffusionPipeline):
    """A prompt-conditioned toy: image brightness is set by the prompt's length, plus noise."""

    def __init__(self) -> None:
        super().__init__()
        self.register_to_config(toy=True)

    def __call__(
        self,
        prompt,
        num_images_per_prompt: int = 1,
        generator=None,
        output_type: str = "pil",
        return_dict: bool = True,
    ):
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        level = torch.tensor([len(p) / 10 for p in prompts]).repeat_interleave(
            num_images_per_prompt
        )
        noise = torch.rand(level.numel(), 1, 8, 8, generator=generator)
        x = (level[:, None, None, None] * 0.5 + 0.5 * noise).clamp(0, 1)
        return ImagePipelineOutput(images=x.permute(0, 2, 3, 1).numpy())


def test_ddpm_pipeline_returns_pil_images_in_its_output_class():
    tpipe = with_temperature(ddpm_pipeline(), quantizer=bright, num_inference_steps=2)
    assert isinstance(tpipe, TemperaturePipeline) and tpipe.adapter_class.name == "diffusion"
    out = tpipe(
        temperature=0.5, num_images_per_prompt=4, generator=torch.manual_seed(0), output_type="pil"
    )
    assert type(out) is ImagePipelineOutput and len(out.images) == 4
    assert all(im.size == (8, 8) and im.mode == "L" for im in out.images)
    again = tpipe(
        temperature=0.5, num_images_per_prompt=4, generator=torch.Generator().manual_seed(0)
    )  # DDPMPipeline's default: "pil"
    assert [im.tobytes() for im in again.images] == [im.tobytes() for im in out.images]
    res = tpipe.last_results[0]
    assert res.method in ("exact", "batch") and res.samples.shape == (4, 1, 8, 8)
    arr = tpipe(temperature=2.0, batch_size=3, generator=1, output_type="np").images
    assert arr.shape == (3, 8, 8, 1) and arr.dtype.name == "float32"
    assert tpipe(temperature=0.5, generator=1, return_dict=False)[0][0].size == (8, 8)


def test_flow_matching_image_pipeline_returns_pil_images():
    pipe = FlowImagePipeline(tiny_unet(), FlowMatchEulerDiscreteScheduler())
    tpipe = with_temperature(pipe, quantizer=bright, num_inference_steps=2)
    assert tpipe.adapter_class.name == "flow_matching"
    out = tpipe(temperature=0.5, num_images_per_prompt=3, generator=torch.manual_seed(0))
    assert type(out) is ImagePipelineOutput and len(out.images) == 3
    assert all(im.size == (8, 8) for im in out.images)


def test_flow_demo_keeps_its_output_class_and_refuses_pil():
    from implicit_temperature.demos.mixture import load_flow_pipeline
    from implicit_temperature.demos.mixture.ddpm_pipeline import MixturePipelineOutput

    tpipe = with_temperature(load_flow_pipeline())
    out = tpipe(temperature=0.5, num_images_per_prompt=8, generator=0)
    assert type(out) is MixturePipelineOutput and out.samples.shape == (8, 2)
    with pytest.raises(ValueError, match="output_type='pil' needs image samples"):
        tpipe(temperature=0.5, num_images_per_prompt=2, generator=0, output_type="pil")


def test_one_generator_per_prompt():
    tpipe = with_temperature(PromptPipeline(), quantizer=bright, method="batch", num_samples=8)
    prompts = ["short", "a much longer prompt"]
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    out = tpipe(prompts, temperature=0.5, num_images_per_prompt=3, generator=gens, output_type="pt")
    assert out.images.shape == (6, 1, 8, 8)
    alone = tpipe(
        prompts[1],
        temperature=0.5,
        num_images_per_prompt=3,
        generator=torch.Generator().manual_seed(2),
        output_type="pt",
    ).images
    assert torch.equal(out.images[3:], alone)  # a prompt's images depend on its generator only
    batched = tpipe(
        prompts, temperature=0.5, num_images_per_prompt=3, generator=0, output_type="pt"
    ).images
    assert batched.shape == (6, 1, 8, 8)
    assert bool(batched[3:].mean() > batched[:3].mean())  # prompt-major order kept
    with pytest.raises(ValueError, match="one generator per prompt"):
        tpipe(prompts, temperature=0.5, generator=[torch.Generator()])
    with pytest.raises(TypeError, match="prompt-conditioned"):
        tpipe(temperature=0.5)


def test_arguments_are_checked_at_construction_before_any_draw(monkeypatch):
    pipe = ddpm_pipeline(train_steps=50)
    calls = []
    monkeypatch.setattr(pipe.unet, "forward", lambda *a, **k: calls.append(1))
    with pytest.raises(
        ValueError,
        match=r"num_inference_steps=1000 \(the default of "
        r"DDPMPipeline\) exceeds the 50 training steps",
    ):
        with_temperature(pipe, quantizer=bright)
    with pytest.raises(ValueError, match="exceeds the 50 training steps"):
        TemperatureSampler(pipe, quantizer=bright)
    with pytest.raises(ValueError, match="integer >= 1"):
        with_temperature(pipe, quantizer=bright, num_inference_steps=0)
    with pytest.raises(TypeError, match="num_steps"):
        with_temperature(pipe, quantizer=bright, num_steps=10)
    with pytest.raises(TypeError, match="arguments of each call"):
        with_temperature(pipe, quantizer=bright, num_inference_steps=10, temperature=0.5)
    with pytest.raises(TypeError, match="diffusers.DiffusionPipeline"):
        with_temperature(lambda n: torch.zeros(n))
    assert calls == []  # nothing was drawn
    ok = with_temperature(pipe, quantizer=bright, num_inference_steps=50)
    assert "TemperaturePipeline(DDPMPipeline" in repr(ok)


def test_fit_fits_the_quantizer_eagerly():
    tpipe = with_temperature(
        ddpm_pipeline(),
        quantizer="codebook",
        quantizer_options={"num_codes": 4},
        num_inference_steps=2,
        fit_samples=64,
    )
    assert tpipe.quantizer.fitted is False
    assert tpipe.fit() is tpipe and tpipe.quantizer.fitted is True
    lazy = TemperatureSampler(ddpm_pipeline(), num_inference_steps=2)
    assert lazy.adapter.quantizer is None
    lazy.adapter.fit()  # the default (image hash) is chosen from one pilot draw
    assert lazy.adapter.quantizer.name == "image_hash"


def test_wrapping_leaves_the_pipeline_progress_bar_config_as_the_user_set_it():
    """The pipeline's own bar is silenced only while the wrapper calls it: the user's
    ``set_progress_bar_config`` (or its absence) is there after wrapping, sampling and a failing
    call, and during a call the user's options are kept with ``disable=True`` added."""
    pipe = DDPMPipeline(unet=tiny_unet(), scheduler=DDIMScheduler(num_train_timesteps=1000))
    assert "_progress_bar_config" not in pipe.__dict__  # never configured
    tpipe = with_temperature(pipe, quantizer=bright, num_inference_steps=2, progress=False)
    tpipe(temperature=0.5, num_images_per_prompt=2, generator=0)
    assert "_progress_bar_config" not in pipe.__dict__

    pipe.set_progress_bar_config(leave=False, desc="mine")
    during: list[dict] = []
    hook = pipe.unet.register_forward_pre_hook(
        lambda m, args: during.append(dict(pipe._progress_bar_config))
    )
    try:
        tpipe(temperature=0.5, num_images_per_prompt=2, generator=0)
    finally:
        hook.remove()
    assert during and all(c == {"leave": False, "desc": "mine", "disable": True} for c in during)
    assert pipe._progress_bar_config == {"leave": False, "desc": "mine"}

    def boom(m, args):
        raise RuntimeError("model failed")

    hook = pipe.unet.register_forward_pre_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="model failed"):
            tpipe(temperature=0.5, generator=0)
    finally:
        hook.remove()
    assert pipe._progress_bar_config == {"leave": False, "desc": "mine"}

    kept = with_temperature(
        pipe, quantizer=bright, num_inference_steps=2, progress=False, pipeline_progress_bar=True
    )
    during.clear()
    hook = pipe.unet.register_forward_pre_hook(
        lambda m, args: during.append(dict(pipe._progress_bar_config))
    )
    try:
        kept(temperature=1.0, generator=0)
    finally:
        hook.remove()
    assert during and all(c == {"leave": False, "desc": "mine"} for c in during)


class _RecordingBar:
    """Stands in for tqdm: records every bar created, its total and its count."""

    made: list[_RecordingBar] = []

    def __init__(self, *args, total=None, desc=None, **kwargs) -> None:
        self.total, self.desc, self.n, self.closed = total, desc, 0, False
        _RecordingBar.made.append(self)

    def update(self, k: int = 1) -> None:
        self.n += k

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("method", ["batch", "exact"])
def test_one_progress_bar_per_temperature_call_with_a_total(monkeypatch, method):
    """One bar per ``tpipe(...)`` call (none per internal draw labelled with the pipeline class,
    although the batch draw here takes 12 pipeline calls of 2 images). The batch method's total
    is known in advance, B x outputs x N = 24; the exact method's is set to the draws spent, and
    the bar counts every draw the call made (pilot included)."""
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", _RecordingBar)
    _RecordingBar.made = []
    tpipe = with_temperature(
        ddpm_pipeline(), quantizer=bright, num_inference_steps=2, draw_batch_size=2, progress=True
    )
    tpipe(temperature=0.5, num_images_per_prompt=3, generator=0, method=method, num_samples=8)
    res = tpipe.last_results[0]
    assert len(_RecordingBar.made) == 1, [b.desc for b in _RecordingBar.made]
    bar = _RecordingBar.made[0]
    assert bar.closed and bar.n == res.draws
    if method == "batch":
        assert bar.desc == "T=0.5 batch N=8" and bar.total == 24 == res.draws
    else:
        assert bar.desc == "T=0.5 exact" and bar.total == res.draws >= 3
    _RecordingBar.made = []
    with_temperature(ddpm_pipeline(), quantizer=bright, num_inference_steps=2, progress=False)(
        temperature=0.5, num_images_per_prompt=3, generator=0, method=method, num_samples=8
    )
    assert _RecordingBar.made == []  # progress=False: no bar at all
