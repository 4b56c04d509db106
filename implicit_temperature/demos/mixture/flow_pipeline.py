"""The flow-matching demo pipeline: ``FlowMatchEulerDiscreteScheduler`` + ``MLPDenoiser``.

The denoiser predicts the velocity ``noise - data`` in diffusers' flow-matching convention
(``x_sigma = sigma * noise + (1 - sigma) * data``, ``timestep = 1000 * sigma``, integrated from
sigma = 1 (noise) to 0 (data) by the scheduler's Euler steps).
"""

from __future__ import annotations

import torch

from .ddpm_pipeline import MixturePipelineBase, MixturePipelineOutput

__all__ = ["MixtureFlowMatchingPipeline", "MixturePipelineOutput"]


class MixtureFlowMatchingPipeline(MixturePipelineBase):
    """Flow-matching sampling of the demo mixture.

    ``pipe(batch_size, generator=None, num_inference_steps=20, latents=None, output_type="pt")``
    returns ``MixturePipelineOutput(samples=(batch_size, 2))``. Deterministic given the initial
    noise (``latents``, or drawn from ``generator``).
    """

    default_num_inference_steps = 20

    def _step(self, model_output: torch.Tensor, t, x: torch.Tensor, generator) -> torch.Tensor:
        """One Euler step along the predicted velocity (deterministic)."""
        return self.scheduler.step(model_output, t, x).prev_sample
