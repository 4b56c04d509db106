"""What the exact sampler costs: power sums S(r), known or estimated from a pilot, and the
cost formulas of flat rounds and collision trees over them.

With s = 1/T = n + a (n = floor(s), a in [0, 1)) and power sums S(r) = sum_x P(x)^r, the flat
round (``plan="flat"``) costs

    rounds per output   = 1 / Z_T,   Z_T = S(s)
    draws per round     = 1 + S(1) + S(2) + ... + S(n - 1)   (collision stage with early exit:
                          draw k >= 2 is made iff draws 1..k-1 agreed, probability S(k - 1);
                          the draw that ends a round at its first mismatch is counted: given
                          that it differs from x it is not a fresh draw, so it cannot seed the
                          next round)
                          + S(s - 1) if a > 0   (Bernoulli factory: p^(a-1) flips given x,
                                                 reached with probability P(x)^n)
    draws per output    = draws per round / Z_T,

and a collision tree ``A+B`` costs c(A+B) = (c(A) + c(B)) S(a) S(b) / S(a + b) per output (the
tree notation is in :mod:`.plan`). Every sum is evaluated in closed form (no loop over 1/T), so
the cost of any T down to the smallest positive float is computed at once;
it is ``inf`` where it overflows.

:func:`leaf_costs` and :func:`tree_cost` evaluate these formulas for power sums of a known law
(:class:`LawPowerSums`) or estimated from a pilot batch (:class:`PilotPowerSums`). Choosing the
cheapest tree (and so the cost of ``plan="auto"``: :func:`expected_exact_cost`) is the planner's
job, in :mod:`.planner`; this module never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import InvalidTemperatureError
from .plan import SNAP_RTOL, Tree
from .validation import check_temperature, inverse_temperature

#: Largest integer r for which the pilot's unbiased estimate of S(r) is tabulated.
PILOT_MAX_POWER = 64


@dataclass(frozen=True)
class ExactCost:
    """Expected cost of the exact sampler per output (draws), Z_T and the plan.

    ``draws_per_round`` and ``rounds_per_output`` describe the flat round (None for a tree).
    """

    draws_per_output: float
    draws_per_round: float | None
    rounds_per_output: float | None
    z: float
    plan: str = "flat"


def exact_exponent(temperature: float) -> float:
    """s = 1/T for the exact method (T <= 1), with a clear error above 1."""
    t = check_temperature(temperature)
    if t > 1.0:
        raise InvalidTemperatureError(
            f"the exact method needs T <= 1 (got T={t}): above 1 the target needs "
            "P(x)^(1/T - 1), an "
            'unbounded factor no sample-only algorithm can produce; use method="batch"'
        )
    return inverse_temperature(t)


# --------------------------------------------------------------------------- power sums


class PowerSums:
    """log S(r) = log sum_x P(x)^r per problem (B,), for a tensor of exponents r >= 0."""

    num_problems: int

    def log_s(self, r: torch.Tensor) -> torch.Tensor:  # (R,) -> (B, R)
        raise NotImplementedError

    def collision_sum(self, n: torch.Tensor) -> torch.Tensor:  # (R,) integers >= 1 -> (B, R)
        """sum_{i=1}^{n-1} S(i) (the collision stage's expected draws after the first)."""
        raise NotImplementedError


class LawPowerSums(PowerSums):
    """Exact power sums of known categorical laws ``probs`` (K,) or (B, K) (rows sum to 1)."""

    def __init__(self, probs: torch.Tensor) -> None:
        p = torch.as_tensor(probs, dtype=torch.float64)
        if p.dim() == 1:
            p = p.unsqueeze(0)
        self.num_problems = p.shape[0]
        self.logp = torch.where(p > 0, torch.log(p.clamp(min=1e-300)), float("-inf"))
        self.p = p

    def log_s(self, r: torch.Tensor) -> torch.Tensor:
        r = r.to(torch.float64)
        terms = self.logp.unsqueeze(-1) * r  # (B, K, R); -inf * r stays -inf for r > 0
        terms = torch.where(self.p.unsqueeze(-1) > 0, terms, float("-inf"))
        return torch.logsumexp(terms, dim=1)

    def collision_sum(self, n: torch.Tensor) -> torch.Tensor:
        m = (n.to(torch.float64) - 1.0).clamp(min=0.0)  # (R,)
        p = self.p.unsqueeze(-1)  # (B, K, 1)
        # sum_{i=1}^{m} p^i = p (1 - p^m) / (1 - p); m for p = 1
        geo = p * -torch.expm1(m * self.logp.unsqueeze(-1)) / (1.0 - p).clamp(min=1e-300)
        terms = torch.where(p >= 1.0, m.expand_as(geo), torch.where(p > 0, geo, 0.0))
        return terms.sum(1)


class PilotPowerSums(PowerSums):
    """Power sums estimated from pilot batches: ``counts`` (B, N), how many of the N pilot
    samples of each problem share each sample's key (as :func:`group_counts` returns).

    * integer r <= K: sum over seen outcomes of C(c_x, r) / C(N, r), unbiased for S(r) (it counts
      the r-subsets of the pilot that collide); r = 0 gives the number of distinct outcomes seen.
      K = floor(sqrt(2 c_max)) (at least 1, at most ``PILOT_MAX_POWER``): for the top outcome,
      C(c, r) / C(N, r) falls below (c/N)^r by a factor of about exp(-r^2 / (2c)), so beyond
      sqrt(2c) a typical pilot would make S(r) look far too small (a large r near c_max would
      also rest on a handful of samples);
    * fractional r <= K: log-linear interpolation between the neighbouring integers. log S is
      convex in r (Hoelder), so with exact integer values this is an upper bound on S(r), tight
      when one outcome dominates;
    * r > K: log-linear extrapolation with the slope between K - 1 and K. By convexity the true
      slope can only grow (towards log max P), so this errs towards a smaller S(r), i.e. a larger
      estimated cost: auto leans to batch, and the pilot grows (``PILOT_SHARE`` of the estimate)
      until the estimate is good enough. (The top outcome's share c_max / N would be less
      biased for a clear mode but badly optimistic on spread laws, where the largest of many
      small counts overstates its probability.) In a tree's cost S(a) S(b) / S(a + b) then only
      depends on the level S(K) / exp(K slope).

    Outcomes the pilot never saw are missing, so on heavy tails S(r) for r < 1 (and the costs of
    leaves in (1, 2)) are underestimated.
    """

    def __init__(self, counts: torch.Tensor, row_stable: bool = False) -> None:
        """``row_stable``: compute each problem's sums by elementwise products and per-row
        sums instead of one matrix product, so that a problem's figures are bitwise the same
        whatever it is stacked with (a matrix product's rounding depends on the batch's
        shape); used where each problem must plan from its own pilot (core/row_plans.py)."""
        counts = counts.cpu()  # planning runs on the host (many small steps)
        c = counts.to(torch.float64)
        if c.dim() == 1:
            c = c.unsqueeze(0)
        b, n = c.shape
        self.num_problems = b
        dev = c.device
        # outcomes per count value: each of the c samples of an outcome adds 1/c
        hist = torch.zeros(b, n + 1, dtype=torch.float64, device=dev)
        hist.scatter_add_(1, counts.long().view(b, n), 1.0 / c)
        kcap = min(PILOT_MAX_POWER, n)
        cv = torch.arange(n + 1, dtype=torch.float64, device=dev).unsqueeze(1)  # (N+1, 1)
        kv = torch.arange(kcap + 1, dtype=torch.float64, device=dev).unsqueeze(0)  # (1, K+1)
        ok = kv <= cv
        log_ratio = (
            torch.lgamma(cv + 1)
            - torch.lgamma(torch.where(ok, cv - kv + 1, torch.ones_like(cv - kv)))
            - torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64, device=dev))
            + torch.lgamma(n - kv + 1)
        )
        weight = torch.where(ok, torch.exp(log_ratio), torch.zeros_like(log_ratio))
        if row_stable:
            est = (hist.unsqueeze(2) * weight.unsqueeze(0)).sum(1)
        else:
            est = hist @ weight  # (B, K+1): estimates of S(0..K)
        c_max = c.amax(1)
        self.k = torch.clamp(torch.floor(torch.sqrt(2 * c_max)), min=1, max=kcap).long()  # (B,)
        self.log_int = torch.log(est.clamp(min=1e-300))
        self.cum = torch.cumsum(est, 1)  # sum_{i<=j} S(i), S(0) included
        rows = torch.arange(b, device=dev)
        self.log_k = self.log_int[rows, self.k]
        self.slope = self.log_k - self.log_int[rows, self.k - 1]  # <= 0

    def rows(self, index: torch.Tensor) -> PilotPowerSums:
        """The power sums of the problems ``index`` (LongTensor), as their own object."""
        out = PilotPowerSums.__new__(PilotPowerSums)
        out.num_problems = int(index.numel())
        for name in ("k", "log_int", "cum", "log_k", "slope"):
            setattr(out, name, getattr(self, name)[index])
        return out

    def log_s(self, r: torch.Tensor) -> torch.Tensor:
        r = r.to(torch.float64).to(self.log_int.device).unsqueeze(0)  # (1, R)
        k = self.k.unsqueeze(1).double()
        lo = torch.floor(torch.minimum(r, k)).clamp(min=0)
        frac = torch.minimum(r, k) - lo
        lo_i = lo.long().expand(self.num_problems, -1)
        hi_i = (lo_i + 1).clamp(max=self.log_int.shape[1] - 1)
        inside = (1 - frac) * self.log_int.gather(1, lo_i) + frac * self.log_int.gather(1, hi_i)
        outside = self.log_k.unsqueeze(1) + (r - k) * self.slope.unsqueeze(1)
        return torch.where(r <= k, inside, outside)

    def collision_sum(self, n: torch.Tensor) -> torch.Tensor:
        m = (n.to(torch.float64).to(self.cum.device) - 1.0).clamp(min=0).unsqueeze(0)  # (1, R)
        k = self.k.unsqueeze(1).double()
        within = torch.minimum(m, k).long().expand(self.num_problems, -1)
        direct = self.cum.gather(1, within) - self.cum[:, :1]  # sum_{i=1}^{min(m, K)} S(i)
        beyond = (m - k).clamp(min=0)
        rho = torch.exp(self.slope).unsqueeze(1)
        s_k = torch.exp(self.log_k).unsqueeze(1)
        geo = (
            s_k * rho * -torch.expm1(beyond * self.slope.unsqueeze(1)) / (1 - rho).clamp(min=1e-300)
        )
        tail = torch.where(rho >= 1.0, s_k * beyond, geo)
        return direct + torch.where(beyond > 0, tail, torch.zeros_like(tail))


# --------------------------------------------------------------------------- costs


def snap_tensor(r: torch.Tensor) -> torch.Tensor:
    """``r`` (float64) with entries within ``SNAP_RTOL`` of an integer rounded to it."""
    k = torch.round(r)
    return torch.where((r - k).abs() <= SNAP_RTOL * r.abs().clamp(min=1.0), k, r)


def leaf_costs(ps: PowerSums, r: torch.Tensor) -> torch.Tensor:
    """Expected draws per output of the flat round at each exponent r (R,) -> (B, R); inf for
    r < 1."""
    r = snap_tensor(r.to(torch.float64))
    n = torch.floor(r)
    a = r - n
    factory = torch.where(a > 0, torch.exp(ps.log_s((r - 1).clamp(min=0))), 0.0)
    per_round = 1.0 + ps.collision_sum(n.clamp(min=1)) + factory
    cost = per_round * torch.exp(-ps.log_s(r))
    return torch.where(r >= 1.0, cost, float("inf"))


def tree_cost(tree: Tree, ps: PowerSums) -> torch.Tensor:
    """Expected draws per output (float64 (B,)) of ``tree`` under the power sums ``ps``."""
    nodes = tree.nodes()
    exps = torch.tensor([t.s for t in nodes], dtype=torch.float64)
    log_s = ps.log_s(exps)  # (B, nodes)
    flat = leaf_costs(ps, exps)
    index = {id(t): i for i, t in enumerate(nodes)}
    cost: dict[int, torch.Tensor] = {}
    for i, t in enumerate(nodes):
        if t.is_leaf:
            cost[id(t)] = flat[:, i]
        else:
            li, ri = index[id(t.left)], index[id(t.right)]
            ratio = torch.exp(log_s[:, li] + log_s[:, ri] - log_s[:, i])
            cost[id(t)] = (cost[id(t.left)] + cost[id(t.right)]) * ratio
    return cost[id(tree)]


def acceptance(tree: Tree, ps: PowerSums) -> dict[int, torch.Tensor]:
    """Per node id: the probability (B,) that a pair is kept, S(a+b) / (S(a) S(b))."""
    nodes = [t for t in tree.nodes() if not t.is_leaf]
    if not nodes:
        return {}
    exps = torch.tensor(
        [[t.s, t.parts[0].s, t.parts[1].s] for t in nodes], dtype=torch.float64
    ).flatten()
    ls = ps.log_s(exps).view(-1, len(nodes), 3)
    rate = torch.exp(ls[..., 0] - ls[..., 1] - ls[..., 2]).clamp(max=1.0)
    return {id(t): rate[:, i] for i, t in enumerate(nodes)}


#: Names that lived here before the planner had its own module (resolved lazily: the planner
#: imports this module, never the other way).
_MOVED_TO_PLANNER = frozenset(
    {"choose_tree", "expected_exact_cost", "expected_exact_draws", "estimate_exact_draws"}
)


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_PLANNER:
        from . import planner

        return getattr(planner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
