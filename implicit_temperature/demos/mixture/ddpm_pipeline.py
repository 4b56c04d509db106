"""The DDPM demo pipeline: a diffusers scheduler + ``MLPDenoiser`` on the 2-D demo mixture.

``MixtureDDPMPipeline`` is a real ``DiffusionPipeline`` subclass: components are registered with
``register_modules(denoiser=..., scheduler=...)`` and the mixture it was trained on is part of its
configuration (``model_index.json``), so ``save_pretrained``/``from_pretrained`` round-trip all of
it. Load it through the class (``MixtureDDPMPipeline.from_pretrained(folder)``) or
:func:`implicit_temperature.demos.mixture.load_ddpm_pipeline`; diffusers' generic
``DiffusionPipeline.from_pretrained`` only finds classes that live inside diffusers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from ...core.errors import InvalidArgumentError

# diffusers loads the denoiser named in model_index.json only from an already-imported module.
from .models import MLPDenoiser  # noqa: F401


@dataclass
class MixturePipelineOutput(BaseOutput):
    """``samples``: (batch_size, D) torch.Tensor (``output_type="pt"``) or np.ndarray ("np")."""

    samples: torch.Tensor | np.ndarray


class MixturePipelineBase(DiffusionPipeline):
    """Shared by the DDPM and flow-matching demo pipelines: config, mixture, output handling.

    Config values (``model_index.json``): ``mixture_means`` (K x D list), ``mixture_weights``
    (K list), ``mixture_std`` (float) — the mixture the denoiser was trained on.
    """

    model_cpu_offload_seq = "denoiser"
    #: Hint for the adapters: how many samples one pipeline call may draw (tiny model: many).
    default_draw_batch_size = 8192
    default_num_inference_steps = 25

    def __init__(
        self,
        denoiser,
        scheduler,
        mixture_means: list | None = None,
        mixture_weights: list | None = None,
        mixture_std: float | None = None,
    ) -> None:
        super().__init__()
        self.register_modules(denoiser=denoiser, scheduler=scheduler)
        self.register_to_config(
            mixture_means=[list(map(float, m)) for m in mixture_means]
            if mixture_means is not None
            else None,
            mixture_weights=list(map(float, mixture_weights))
            if mixture_weights is not None
            else None,
            mixture_std=float(mixture_std) if mixture_std is not None else None,
        )

    @property
    def mixture_means(self) -> torch.Tensor:
        """(K, D) float32: the means of the mixture this model was trained on."""
        return torch.tensor(self.config.mixture_means, dtype=torch.float32)

    @property
    def mixture_weights(self) -> torch.Tensor:
        """(K,) float32: the component weights this model was trained on."""
        return torch.tensor(self.config.mixture_weights, dtype=torch.float32)

    @property
    def mixture_std(self) -> float:
        return float(self.config.mixture_std)

    def _initial_noise(self, batch_size: int, generator, latents) -> torch.Tensor:
        """Standard normal (batch_size, D) from ``generator``, or the given ``latents``."""
        dim = self.denoiser.config.sample_dim
        if latents is not None:
            if tuple(latents.shape) != (batch_size, dim):
                raise InvalidArgumentError(
                    f"latents must have shape {(batch_size, dim)}, got {tuple(latents.shape)}"
                )
            return latents.to(device=self.device, dtype=self.denoiser.dtype)
        return randn_tensor(
            (batch_size, dim), generator=generator, device=self.device, dtype=self.denoiser.dtype
        )

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        num_inference_steps: int | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pt",
        return_dict: bool = True,
    ):
        steps = num_inference_steps or self.default_num_inference_steps
        x = self._initial_noise(batch_size, generator, latents)
        self.scheduler.set_timesteps(steps, device=self.device)
        for t in self.progress_bar(self.scheduler.timesteps):
            x = self._step(self.denoiser(x, t), t, x, generator)
        return self._finish(x, output_type, return_dict)

    def _step(self, model_output: torch.Tensor, t, x: torch.Tensor, generator) -> torch.Tensor:
        """One scheduler step from the denoiser's output (defined by each pipeline)."""
        raise NotImplementedError

    def _finish(self, x: torch.Tensor, output_type: str, return_dict: bool):
        if output_type == "np":
            x = x.cpu().numpy()
        elif output_type != "pt":
            raise InvalidArgumentError(f"output_type must be 'pt' or 'np', got {output_type!r}")
        if not return_dict:
            return (x,)
        return MixturePipelineOutput(samples=x)


class MixtureDDPMPipeline(MixturePipelineBase):
    """DDPM ancestral sampling of the demo mixture (``DDPMScheduler``, epsilon prediction).

    ``pipe(batch_size, generator=None, num_inference_steps=25, latents=None, output_type="pt")``
    returns ``MixturePipelineOutput(samples=(batch_size, 2))``. ``latents`` replaces the initial
    noise (the ancestral steps still draw fresh noise from ``generator``).
    """

    def _step(self, model_output: torch.Tensor, t, x: torch.Tensor, generator) -> torch.Tensor:
        """One ancestral step from the predicted noise (fresh noise drawn from ``generator``)."""
        return self.scheduler.step(model_output, t, x, generator=generator).prev_sample
