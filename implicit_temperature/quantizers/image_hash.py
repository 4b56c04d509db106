"""``image_hash``: an average hash of a downsampled grayscale image, the default key for images.

Each bit says "this cell is brighter than the image's mean" (hash_size x hash_size cells).
Limits: it sees only the coarse light/dark layout (not colour, texture or content); two images
are "the same outcome" when their layouts agree, so temperature acts on the distribution of
layouts. It is useful only when the model puts appreciable probability on a few layouts: with
2^(hash_size^2) cells a diverse model rarely repeats a key, so the exact method rarely sees a
collision (cost explodes; set ``max_draws``) and the batch method falls to cascade level 1 (a
uniform pick, i.e. T = 1). For semantic temperature pass a classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.options import is_positive_int
from .base import Quantizer, QuantizerError


class ImageHashQuantizer(Quantizer):
    """Average hash of images ``(n, C, H, W)`` (or grayscale ``(n, H, W)``) -> LongTensor keys.

    Each image is averaged over channels, area-downsampled to ``hash_size x hash_size`` and
    thresholded at its own mean: one bit per cell. ``hash_size**2 <= 62`` bits are packed into one
    int64 key ``(n,)``; larger hashes return the bits ``(n, hash_size**2)``. Deterministic,
    invariant to brightness/contrast changes. Default ``hash_size=4`` (16 bits, 65536 cells).
    """

    name = "image_hash"

    def __init__(self, hash_size: int = 4, *, batched: bool = False) -> None:
        super().__init__(batched=batched)
        if not is_positive_int(hash_size):  # a quantizer option: the quantizer's own error
            raise QuantizerError(f"hash_size must be an integer >= 1, got {hash_size!r}")
        self.hash_size = hash_size

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4:
            raise QuantizerError(
                f"the image-hash quantizer takes images (n, C, H, W) or (n, H, W), got samples of "
                f"shape {tuple(x.shape)}; for vectors pass quantizer='grid' (cell_size=...), "
                "'codebook', or a classifier callable"
            )
        gray = x.float().mean(dim=1, keepdim=True)
        small = F.adaptive_avg_pool2d(gray, self.hash_size).flatten(1)  # (n, h*h)
        bits = (small > small.mean(dim=1, keepdim=True)).long()
        if bits.shape[1] <= 62:
            weights = 2 ** torch.arange(bits.shape[1], device=bits.device, dtype=torch.long)
            return (bits * weights).sum(dim=1)
        return bits

    def _repr_options(self) -> str:
        return f"hash_size={self.hash_size}, batched={self.batched}"
