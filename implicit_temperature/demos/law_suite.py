"""A fixed suite of known categorical laws, from peaked to spread, for accuracy studies.

Used by the accuracy tests and the calibration and frontier benchmarks: each law's P^(1/T) is
known, so the TV of what a method returns can be computed for real. Half of the laws are spread
(many outcomes with small shares, the regime of open-ended CALM contexts and fine quantizers),
half peaked. Every law is deterministic (seeded), float64, 1-D, sums to 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Law:
    """A named law: ``probs`` float64 (K,), ``spread`` True for the many-small-shares regime."""

    name: str
    probs: torch.Tensor
    spread: bool

    def draw(self) -> Callable[..., torch.Tensor]:
        """``draw(m, generator=None)`` -> LongTensor (m,) of outcome ids ~ probs."""
        p = self.probs

        def draw(m: int, generator: torch.Generator | None = None) -> torch.Tensor:
            return torch.multinomial(p, m, replacement=True, generator=generator)

        return draw


def _normalise(w: torch.Tensor) -> torch.Tensor:
    w = w.double()
    return w / w.sum()


def dirichlet(k: int, alpha: float, seed: int) -> torch.Tensor:
    """A fixed draw of Dirichlet(alpha, ..., alpha) over k outcomes."""
    g = torch.Generator().manual_seed(seed)
    return _normalise(torch._standard_gamma(torch.full((k,), alpha, dtype=torch.float64), g))


def zipf(k: int, exponent: float) -> torch.Tensor:
    """P(i) proportional to (i + 1)^-exponent, i < k."""
    return _normalise(torch.arange(1, k + 1, dtype=torch.float64) ** -exponent)


def flat_head() -> torch.Tensor:
    """0.06, four outcomes at 0.05, 1,000 outcomes at 0.00074, normalised (issue 16's example)."""
    return _normalise(torch.cat([torch.tensor([0.06] + [0.05] * 4), torch.full((1000,), 0.00074)]))


def product(per_token: torch.Tensor, length: int) -> torch.Tensor:
    """The law of ``length`` i.i.d. tokens of ``per_token`` (a CALM chunk): K^length outcomes."""
    law = per_token.double()
    for _ in range(length - 1):
        law = (law.unsqueeze(1) * per_token.double().unsqueeze(0)).flatten()
    return _normalise(law)


def suite() -> list[Law]:
    """The 12 laws: 6 peaked, then 6 spread (top share <= 0.06, thousands of outcomes)."""
    return [
        Law("peaked-4", _normalise(torch.tensor([0.5, 0.3, 0.15, 0.05])), False),
        Law("zipf-30", zipf(30, 1.1), False),
        Law("geometric-20", _normalise(0.7 ** torch.arange(20, dtype=torch.float64)), False),
        Law("zipf-200 (1.5)", zipf(200, 1.5), False),
        Law("dirichlet-10 (1.0)", dirichlet(10, 1.0, 1), False),
        Law("tokens 8^4 (peaked)", product(zipf(8, 2.0), 4), False),
        Law("dirichlet-2000 (0.1)", dirichlet(2000, 0.1, 0), True),
        Law("dirichlet-5000 (0.05)", dirichlet(5000, 0.05, 0), True),
        Law("flat-head", flat_head(), True),
        Law("tokens 16^4", product(zipf(16, 1.0), 4), True),
        Law("uniform-ish 1000", dirichlet(1000, 50.0, 2), True),
        Law("zipf-5000 (1.0)", zipf(5000, 1.0), True),
    ]
