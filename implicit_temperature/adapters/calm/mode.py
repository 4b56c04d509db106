"""Mode decoding for CALM (``do_sample=False`` or ``temperature=0``): the T -> 0 limit of the
batch rule.

At temperature T the batch rule weights each outcome of N draws by about ``count ** (1/T)``; as
T -> 0 all the weight goes to the most frequent outcome of the pool. :func:`mode_chunks` draws N
chunks per context and returns the most frequent one (ties: the first of the tied outcomes in
draw order; the draws are i.i.d., so that is a uniform choice among them). Approximate: the
pool's mode converges to the law's mode as N grows.
"""

from __future__ import annotations

import torch

from .adapter import CALMAdapter


def pool_mode(keys: torch.Tensor) -> torch.Tensor:
    """Index ``(B,)`` of the most frequent key in each row of ``keys (B, N, K)`` (first of ties).

    Vectorised: an ``(B, N, N)`` equality table, so memory grows as N^2 per row (N = 200: 40k
    booleans per row)."""
    same = (keys[:, :, None, :] == keys[:, None, :, :]).all(dim=-1)
    counts = same.sum(dim=-1)  # (B, N): how often each draw's chunk occurs in its row
    return counts.argmax(dim=-1)  # argmax returns the first maximum


def mode_chunks(adapter: CALMAdapter, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """The most frequent of ``num_samples`` next-chunk draws per context: LongTensor ``(B, K)``."""
    draws = adapter.draw(num_samples, generator=generator)
    index = pool_mode(adapter.quantize(draws))
    return draws[torch.arange(draws.shape[0], device=draws.device), index]
