"""The toy model family: a die whose face probabilities are known (so tests can check P^(1/T))."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class LoadedDie:
    """A die with faces ``0 .. k-1`` and face probabilities ``probs`` (k >= 1, summing to 1).

    ``roll(n, generator=None)`` returns a LongTensor ``(n,)`` of i.i.d. faces in one vectorised
    call. Only the adapter's ``draw`` uses it: temperature is applied from samples alone, the
    probabilities are there so tests can compute the target law P(x)^(1/T) / Z.
    """

    def __init__(self, probs: Sequence[float] | torch.Tensor) -> None:
        p = torch.as_tensor(probs, dtype=torch.float64)
        if p.dim() != 1 or p.numel() < 1 or (p < 0).any() or abs(float(p.sum()) - 1.0) > 1e-9:
            raise ValueError(
                "probs must be a 1-D list of k >= 1 non-negative numbers summing to 1, "
                f"got {probs!r}"
            )
        self.probs = p

    @property
    def num_faces(self) -> int:
        return self.probs.numel()

    def roll(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(self.probs, n, replacement=True, generator=generator)

    def __repr__(self) -> str:
        return f"LoadedDie({[round(float(v), 4) for v in self.probs]})"
