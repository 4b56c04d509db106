"""The ``exact`` quantizer: every distinct sample is its own outcome (nothing is lost)."""

from __future__ import annotations

import torch

from .base import Quantizer, QuantizerError, rows

_BIT_VIEW = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}


class ExactQuantizer(Quantizer):
    """Key each sample by its exact value: samples with equal keys are bit-for-bit identical.

    Input ``(n,)`` gives keys ``(n,)``; input ``(n, ...)`` is flattened to keys ``(n, d)``, d the
    number of entries per sample (``batched=True``: ``(B, n, ...)`` -> ``(B, n)`` / ``(B, n, d)``).
    Integer and bool tensors keep their values; float tensors are compared by their bit patterns
    (so 0.0 and -0.0 are different outcomes; NaN is refused because it usually means a broken
    sampler); complex tensors by the bits of their real and imaginary parts.

    When to use: outputs that repeat exactly — token ids, CALM's decoded token chunks, class labels,
    dice faces. It loses nothing, so temperature acts on the model's own distribution.
    When not to: continuous outputs (images, latents, float vectors). No two such samples are ever
    equal, so the exact sampler never sees a collision (it runs until ``max_draws``) and the batch
    method picks uniformly, i.e. temperature has no effect. Use ``grid`` or ``codebook`` there.
    """

    name = "exact"

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_complex():
            x = torch.view_as_real(x).reshape(x.shape[0], -1)
        if x.is_floating_point():
            if torch.isnan(x).any():
                raise QuantizerError(
                    "the 'exact' quantizer got NaN samples; NaN cannot be compared. Fix the "
                    "sampler, or use a 'classifier' quantizer that gives NaN samples a label of "
                    "their own"
                )
            if x.dtype not in _BIT_VIEW:
                x = x.double()
            return rows(x.contiguous().view(_BIT_VIEW[x.dtype]).long())
        return rows(x.long())

