"""The 2-D Gaussian mixture the demo models are trained on.

Torch only (no diffusers): the demo pipelines, the training script, the tests and the demos all
read the mixture from here, so the weights the models were trained on are stated once.
"""

from __future__ import annotations

import torch

from ...quantizers import NearestComponentQuantizer
from ..laws import tempered

#: Component means (K, 2): four well-separated points on a circle of radius 2.
DEMO_MEANS: tuple[tuple[float, float], ...] = ((2.0, 0.0), (0.0, 2.0), (-2.0, 0.0), (0.0, -2.0))
#: Component weights (K,): known and unequal, so temperature visibly reshapes them.
DEMO_WEIGHTS: tuple[float, ...] = (0.5, 0.3, 0.15, 0.05)
#: Isotropic standard deviation of every component. Adjacent means are 2.83 apart (9.4 std), the
#: nearest-mean boundary is 4.7 std from each mean: nearest-mean labels misclassify a true
#: mixture draw with probability ~1e-6.
DEMO_STD: float = 0.3


def sample_mixture(
    n: int,
    means: torch.Tensor,
    weights: torch.Tensor,
    std: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` mixture draws: (points float32 (n, D), component labels long (n,))."""
    means = torch.as_tensor(means, dtype=torch.float32)
    weights = torch.as_tensor(weights, dtype=torch.float32)
    labels = torch.multinomial(weights, n, replacement=True, generator=generator)
    noise = torch.randn(n, means.shape[1], generator=generator)
    return means[labels] + std * noise, labels


def tempered_weights(weights: torch.Tensor, temperature: float) -> torch.Tensor:
    """The target component law at temperature T: ``w^(1/T) / sum(w^(1/T))`` (float64)."""
    return tempered(weights, temperature)


__all__ = [
    "DEMO_MEANS",
    "DEMO_STD",
    "DEMO_WEIGHTS",
    "NearestComponentQuantizer",
    "sample_mixture",
    "tempered_weights",
]
