"""The 2-D Gaussian mixture the demo models are trained on, and its nearest-mean quantizer.

Torch only (no diffusers): the demo pipelines, the training script, the tests and the demos all
read the mixture from here, so the weights the models were trained on are stated once.
"""

from __future__ import annotations

import torch

from ...quantizers import Quantizer, QuantizerError

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
    w = torch.as_tensor(weights, dtype=torch.float64)
    p = w.pow(1.0 / temperature)
    return p / p.sum()


class NearestComponentQuantizer(Quantizer):
    """Key = index of the nearest mixture mean (Euclidean distance).

    Maps samples ``(n, D)`` (any float dtype/device) to a LongTensor ``(n,)`` with values in
    ``0..K-1`` (``batched=True``: ``(B, n, D)`` -> ``(B, n)``). As a classifier of the *true*
    demo mixture it errs with probability ~1e-6; for a trained model's samples it simply defines
    the cells (components) temperature acts on.
    """

    name = "nearest_component"

    def __init__(self, means: torch.Tensor, *, batched: bool = False) -> None:
        super().__init__(batched=batched)
        self.means = torch.as_tensor(means, dtype=torch.float32)
        if self.means.ndim != 2:
            raise QuantizerError(f"means must be (K, D), got shape {tuple(self.means.shape)}")

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        dim = self.means.shape[1]
        if x.ndim != 2 or x.shape[1] != dim:
            raise QuantizerError(
                f"the nearest-component quantizer takes samples of shape (n, {dim}), got "
                f"{tuple(x.shape)}; pass a quantizer that fits the pipeline's outputs "
                "(quantizer=<name, object or callable>)"
            )
        means = self.means.to(device=x.device, dtype=torch.float32)
        return torch.cdist(x.float(), means).argmin(dim=1).long()

    def _repr_options(self) -> str:
        return f"K={self.means.shape[0]}, batched={self.batched}"
