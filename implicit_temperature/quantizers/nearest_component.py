"""``nearest_component``: key = index of the nearest of K given means (Euclidean distance)."""

from __future__ import annotations

import torch

from .base import Quantizer, QuantizerError


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
