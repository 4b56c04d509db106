"""The jackknifed batch rule (``estimator="jackknife"``): the batch rule with its 1/N bias removed.

The batch rule (:mod:`.batch`) picks outcome x of a pool of N with probability
pi(x) = w(c_x) / W, w(c) = C(c, s), W = sum over distinct outcomes of w. Every weight is an
unbiased estimate of C(N, s) P(x)^s, but the ratio is not: E[pi(x)] - P_s(x) is of order 1/N (the
normalisation W is random). The jackknife removes that term. Let pi_(-i) be the rule's law on the
pool without sample i and pi_(.) = (1/N) sum_i pi_(-i). Then

    q_J = N pi - (N - 1) pi_(.)

has bias of order 1/N^2 when E[pi] = P_s + a/N + O(1/N^2). Negative entries of q_J are set to 0
and the rest renormalised; the chosen outcome's sample is picked uniformly among its copies, as
in the plain rule.

Closed form (no loop over the N leave-one-out pools): removing a member of outcome y changes only
its count, so W'_y = W - w(c_y) + w(c_y - 1) (w(0) = 0: an outcome seen once disappears), and

    sum_y c_y pi_(-y)(x) = w(c_x) (A - c_x / W'_x) + c_x w(c_x - 1) / W'_x,   A = sum_i 1 / W'_(x_i)

(the sum over samples i counts each distinct y c_y times). Everything is per-sample tensor
arithmetic over (B, N): no Python loop over rows or samples, no host synchronisation.

Where the correction is not defined the plain rule is used for that problem: when the cascade
steps down (no outcome is seen more than s - 1 times, so leave-one-out pools would sit at other
levels), or when removing one sample leaves no outcome that qualifies (W'_y = 0).

This is an approximation, like the plain rule: it cannot pick an outcome it did not see, and when
the pool has few repeated outcomes it is no better than the plain rule. Where the pool has many
repeats, its TV to P^(1/T) falls roughly like the square of the plain rule's (docs/algorithms.md
and the frontier section of docs/benchmarks.md give the measured figures).
"""

from __future__ import annotations

import math

import torch

#: W'_y below this share of W counts as "no qualifying outcome left" (the correction is skipped).
VANISHING_SHARE = 1e-9


def _log_binomial(c: torch.Tensor, s: float) -> torch.Tensor:
    """log C(c, s) up to a constant in c; -inf where c <= s - 1 or c <= 0."""
    gap = c - s + 1.0
    ok = (gap > 0) & (c > 0)
    val = torch.lgamma(c + 1.0) - torch.lgamma(torch.where(ok, gap, torch.ones_like(gap)))
    return torch.where(ok, val, torch.full_like(val, -math.inf))


def jackknife_log_probs(
    counts: torch.Tensor, s: float, plain_log_w: torch.Tensor, depth: torch.Tensor
) -> torch.Tensor:
    """Per-sample log selection weights (B, N) float64 of the jackknifed rule.

    counts: LongTensor (B, N), each sample's count of its key in its pool. s: 1/T > 0.
    plain_log_w, depth: the plain rule's per-sample log weights and cascade depth (B,), used as
    they are for the problems where the correction is not defined (module docstring).
    The result is a log-probability up to a per-row constant (feed it to softmax or Gumbel-max).
    """
    if not math.isfinite(s):
        return plain_log_w
    c = counts.double()
    n = c.shape[1]
    log_w = _log_binomial(c, s)
    log_w1 = torch.where(c > 1, _log_binomial(c - 1.0, s), torch.full_like(c, -math.inf))
    top = log_w.amax(1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    w, w1 = torch.exp(log_w - top), torch.exp(log_w1 - top)
    total = (w / c).sum(1, keepdim=True)  # W: each outcome's c members add w / c
    loo_total = total - w + w1  # W'_y for the outcome of each sample
    undefined = (depth > 0) | (loo_total <= VANISHING_SHARE * total).any(1) | (total[:, 0] <= 0)
    loo_total = loo_total.clamp(min=1e-300)
    a = (1.0 / loo_total).sum(1, keepdim=True)
    loo_mean = (w * (a - c / loo_total) + c * w1 / loo_total) / n  # pi_(.)(x_i)
    q = n * w / total.clamp(min=1e-300) - (n - 1) * loo_mean  # q_J of each sample's outcome
    per_sample = torch.where(q > 0, torch.log(q.clamp(min=1e-300) / c), -math.inf)
    return torch.where(undefined.unsqueeze(1), plain_log_w, per_sample)
