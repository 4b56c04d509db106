"""The ``exact`` quantizer: every distinct sample is its own outcome (nothing is lost)."""

from __future__ import annotations

import torch

from ..core.errors import SamplerOutputError
from ..core.keys import exact_values
from .base import Quantizer, QuantizerError, rows


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
        try:
            values = exact_values(x)
        except SamplerOutputError as exc:
            raise QuantizerError(
                "the 'exact' quantizer got NaN samples; NaN cannot be compared. Fix the "
                "sampler, or use a 'classifier' quantizer that gives NaN samples a label of "
                "their own"
            ) from exc
        if x.is_complex():
            values = values.reshape(x.shape[0], -1)
        return rows(values)
