"""A small MLP denoiser / velocity field for low-dimensional data, as a diffusers model.

``MLPDenoiser`` is a diffusers ``ModelMixin`` + ``ConfigMixin`` whose constructor arguments are
registered with ``@register_to_config``, so ``save_pretrained``/``from_pretrained`` round-trip it
as ``config.json`` + ``diffusion_pytorch_model.safetensors``. The same class serves the DDPM demo
(predicts the noise epsilon) and the flow-matching demo (predicts the velocity).
"""

from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ModelMixin  # noqa: F401 - ModelMixin also read by diffusers
from diffusers.configuration_utils import register_to_config
from torch import nn


def timestep_embedding(
    timesteps: torch.Tensor, dim: int, max_period: float = 10000.0
) -> torch.Tensor:
    """Sinusoidal embedding of (n,) timesteps (ints or floats in [0, ~1000]) -> (n, dim)."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(-math.log(max_period) * steps / half)
    args = timesteps.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


class MLPDenoiser(ModelMixin, ConfigMixin):
    """``forward(sample (n, D), timestep scalar or (n,)) -> (n, D)``.

    Args:
        sample_dim: D, the data dimension.
        hidden_dim: width of the hidden layers.
        num_layers: number of hidden layers (SiLU).
        time_embed_dim: size of the sinusoidal timestep embedding.
    """

    @register_to_config
    def __init__(
        self,
        sample_dim: int = 2,
        hidden_dim: int = 64,
        num_layers: int = 3,
        time_embed_dim: int = 32,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = sample_dim + time_embed_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_dim), nn.SiLU()]
            width = hidden_dim
        layers.append(nn.Linear(width, sample_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int) -> torch.Tensor:
        t = torch.as_tensor(timestep, device=sample.device).reshape(-1)
        n = sample.shape[0]
        if t.numel() > 1 and bool((t == t[0]).all()):
            t = t[:1]  # one shared timestep (sampling): embed it once
        emb = timestep_embedding(t, self.config.time_embed_dim).to(sample.dtype)
        return self.net(torch.cat([sample, emb.expand(n, -1)], dim=1))
