"""The exact sampler's expected cost (DESIGN §2) and its estimate from a pilot batch.

With s = 1/T = n + a (n = floor(s), a in [0, 1)) and power sums S(r) = sum_x P(x)^r:

    rounds per output   = 1 / Z_T,   Z_T = S(s)
    draws per round     = 1 + S(1) + S(2) + ... + S(n - 1)   (collision stage with early exit:
                          draw k >= 2 is made iff draws 1..k-1 agreed, probability S(k - 1))
                          + S(s - 1) if a > 0   (Bernoulli factory: p^(a-1) flips given x,
                                                 reached with probability P(x)^n)
    draws per output    = draws per round / Z_T.

Note: DESIGN.md §2 writes the collision term as S(1) + ... + S(n), which leaves out the draw that
ends a round at its first mismatch (it cannot be reused: given that it differs from x it is not a
fresh draw from P). The two agree for n = 1 (T > 1/2); for n >= 2 the formula here is the true
expectation and the one the sampler meets (tests/test_exact.py, benchmarks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import InvalidTemperatureError
from .validation import check_temperature, inverse_temperature


@dataclass(frozen=True)
class ExactCost:
    """Expected cost of the exact sampler per output (draws) and per round, and Z_T."""

    draws_per_output: float
    draws_per_round: float
    rounds_per_output: float
    z: float


def _split(temperature: float) -> tuple[float, int, float]:
    t = check_temperature(temperature)
    if t > 1.0:
        raise InvalidTemperatureError(
            f"the exact method needs T <= 1 (got T={t}): above 1 the target needs "
            "P(x)^(1/T - 1), an "
            'unbounded factor no sample-only algorithm can produce; use method="batch"'
        )
    s = inverse_temperature(t)
    n = int(math.floor(s))
    return s, n, s - n


def _cost_from_power_sums(power_sum, s: float, n: int, a: float) -> ExactCost:
    per_round = 1.0 + sum(power_sum(float(j)) for j in range(1, n))
    if a > 0:
        per_round += power_sum(s - 1.0)
    z = power_sum(s)
    if z <= 0:
        return ExactCost(math.inf, per_round, math.inf, 0.0)
    return ExactCost(per_round / z, per_round, 1.0 / z, z)


def expected_exact_cost(probs: torch.Tensor, temperature: float) -> ExactCost:
    """Expected cost of ``method="exact"`` for a known categorical law ``probs`` (1-D)."""
    s, n, a = _split(temperature)
    p = torch.as_tensor(probs, dtype=torch.float64).flatten()
    if (p < 0).any() or not torch.isclose(p.sum(), torch.tensor(1.0, dtype=torch.float64)):
        raise ValueError("probs must be non-negative and sum to 1")
    p = p[p > 0]
    return _cost_from_power_sums(lambda r: float((p**r).sum()), s, n, a)


def expected_exact_draws(probs: torch.Tensor, temperature: float) -> float:
    """Expected base draws per output of ``method="exact"`` for the categorical law ``probs``."""
    return expected_exact_cost(probs, temperature).draws_per_output


def estimate_exact_draws(counts: torch.Tensor, temperature: float) -> torch.Tensor:
    """Estimate the exact sampler's draws per output from pilot batches, one per problem.

    counts: LongTensor (B, N) (or (N,)): for each pilot sample, how many of the N pilot samples of
    its problem share its key. Returns float64 (B,) (inf where the pilot saw no s-fold collision,
    i.e. Z_T looks too small to estimate). S(r) is estimated by the sum over seen outcomes of
    C(c, r) / C(N, r): unbiased for integer r <= N, the generalised binomial otherwise. Outcomes the
    pilot never saw are missing, so for heavy tails the estimate is optimistic.
    """
    s, n, a = _split(temperature)
    c = counts.double()
    if c.dim() == 1:
        c = c.unsqueeze(0)
    big_n = float(c.shape[1])

    def power_sum(r: float) -> torch.Tensor:
        if r > big_n:
            return torch.zeros(c.shape[0], dtype=torch.float64, device=c.device)
        ok = c > r - 1.0
        gap = torch.where(ok, c - r + 1.0, torch.ones_like(c))
        log_binom = torch.lgamma(c + 1.0) - torch.lgamma(gap) - math.lgamma(r + 1.0)
        log_norm = math.lgamma(big_n + 1.0) - math.lgamma(big_n - r + 1.0) - math.lgamma(r + 1.0)
        terms = torch.where(ok, torch.exp(log_binom - log_norm) / c, torch.zeros_like(c))
        return terms.sum(1)

    per_round = 1.0 + sum(power_sum(float(j)) for j in range(1, n))
    if a > 0:
        per_round = per_round + power_sum(s - 1.0)
    z = power_sum(s)
    return torch.where(z > 0, per_round / z.clamp(min=1e-300), torch.full_like(z, math.inf))
