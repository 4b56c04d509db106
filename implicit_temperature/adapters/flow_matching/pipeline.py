"""The flow-matching demo pipeline: ``FlowMatchEulerDiscreteScheduler`` + ``MLPDenoiser``.

The denoiser predicts the velocity ``noise - data`` in diffusers' flow-matching convention
(``x_sigma = sigma * noise + (1 - sigma) * data``, ``timestep = 1000 * sigma``, integrated from
sigma = 1 (noise) to 0 (data) by the scheduler's Euler steps).
"""

from __future__ import annotations

import torch

from ..diffusion.pipeline import MixturePipelineBase, MixturePipelineOutput

__all__ = ["MixtureFlowMatchingPipeline", "MixturePipelineOutput"]


class MixtureFlowMatchingPipeline(MixturePipelineBase):
    """Flow-matching sampling of the demo mixture.

    ``pipe(batch_size, generator=None, num_inference_steps=20, latents=None, output_type="pt")``
    returns ``MixturePipelineOutput(samples=(batch_size, 2))``. Deterministic given the initial
    noise (``latents``, or drawn from ``generator``).
    """

    default_num_inference_steps = 20

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
            v = self.denoiser(x, t)
            x = self.scheduler.step(v, t, x).prev_sample
        return self._finish(x, output_type, return_dict)
