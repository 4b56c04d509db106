"""The ``diffusion`` adapter: temperature control for a diffusers ``DiffusionPipeline``.

Handles every diffusers pipeline whose scheduler is *not* a flow-matching one (those go to the
``flow_matching`` adapter, so ``TemperatureSampler(pipe)`` never sees two candidates): DDPM, DDIM,
latent diffusion, prompt-conditioned pipelines (through ``num_images_per_prompt``), custom
``DiffusionPipeline`` subclasses such as the shipped DDPM demo. The pipeline-driving code it
shares with the ``flow_matching`` adapter lives in :mod:`implicit_temperature.adapters.pipelines`.
"""

from __future__ import annotations

from typing import Any

from ...core.errors import InvalidArgumentTypeError
from ..pipelines.adapter import SampleAdapter, check_call_kwargs
from ..pipelines.detect import is_diffusion_pipeline, is_flow_matching_pipeline
from ..pipelines.driver import PipelineDriver


class DiffusionAdapter(SampleAdapter):
    """Adapter ``diffusion`` for diffusers pipelines (not flow-matching ones).

    Options (all keyword):
        quantizer: what "the same outcome" means. None (default): nearest mixture component for
            pipelines with ``mixture_means`` (the demos), else an average hash of the
            downsampled image (:class:`~implicit_temperature.quantizers.ImageHashQuantizer`,
            see its limits); a registered quantizer name (``"grid"``, ``"codebook"``,
            ``"classifier"``, ...); a quantizer object; or any callable
            ``samples -> integer labels``.
        quantizer_options: dict of options for a registered quantizer name, e.g.
            ``quantizer="grid", quantizer_options={"cell_size": 0.5}`` (the one way to pass
            quantizer options to an adapter; or pass a ready quantizer object as ``quantizer=``).
        batch_size: most samples per pipeline call (memory); default the pipeline's
            ``default_draw_batch_size``, else sized from the UNet's sample (16 for 3 x 32 x 32
            values or more, e.g. Stable Diffusion's latents; up to 256 for small images, see
            :func:`~implicit_temperature.adapters.pipelines.driver.default_batch_size`).
        prompt: a string, or a list of B strings (then the adapter is batched: B problems).
        progress: tqdm bar over chunks: True, False, or None (when >= 4 chunks).
        pipeline_progress_bar: keep the pipeline's own per-call bar (default off).
        fit_samples, fit_seed: pilot size and seed for quantizers that need ``fit``.
        **call_kwargs: passed to every pipeline call (``num_inference_steps=``, ...).
    """

    name = "diffusion"

    def __init__(
        self,
        model: Any,
        *,
        quantizer: Any = None,
        quantizer_options: dict[str, Any] | None = None,
        batch_size: int | None = None,
        prompt: str | list[str] | None = None,
        progress: bool | None = None,
        pipeline_progress_bar: bool = False,
        fit_samples: int = 1024,
        fit_seed: int = 0,
        **call_kwargs: Any,
    ) -> None:
        if not is_diffusion_pipeline(model):
            raise InvalidArgumentTypeError(
                f"the diffusion adapter drives a diffusers.DiffusionPipeline, got "
                f"{type(model).__module__}.{type(model).__qualname__}. Load one (e.g. "
                "DDPMPipeline.from_pretrained(...)); for a plain velocity field v(x, t) use "
                "adapter='flow_matching' with sample_shape=...; for any other sampler wrap it "
                "as draw(n) and call implicit_temperature.temperature_sample"
            )
        check_call_kwargs(type(self), model, call_kwargs)
        driver = PipelineDriver(
            model,
            batch_size=batch_size,
            prompt=prompt,
            progress=progress,
            pipeline_progress_bar=pipeline_progress_bar,
            call_kwargs=call_kwargs,
        )
        self._setup(
            model,
            driver,
            quantizer=quantizer,
            quantizer_options=quantizer_options,
            fit_samples=fit_samples,
            fit_seed=fit_seed,
        )

    @classmethod
    def handles(cls, model: Any) -> bool:
        """True for diffusers pipelines whose scheduler is not a flow-matching one."""
        return is_diffusion_pipeline(model) and not is_flow_matching_pipeline(model)
