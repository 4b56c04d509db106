"""The exact sampler's expected cost for a known law, and its estimate from a pilot batch.

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

and a collision tree ``A+B`` costs c(A+B) = (c(A) + c(B)) S(a) S(b) / S(a + b) per output (see
:mod:`.plan`). Every sum is evaluated in closed form (no loop over 1/T), so the cost of any T down
to the smallest positive float is computed at once; it is ``inf`` where it overflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import InvalidArgumentError, InvalidTemperatureError
from .grouping import group_counts
from .plan import (
    LawPowerSums,
    PilotPowerSums,
    PowerSums,
    Tree,
    format_tree,
    leaf_costs,
    plan_tree,
    resolve_plan,
    tree_cost,
)
from .validation import check_temperature, inverse_temperature


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


def choose_tree(ps: PowerSums, s: float, plan: str | Tree) -> tuple[Tree, torch.Tensor]:
    """The tree for ``plan`` ("auto": planned under ``ps``) and its cost per output (B,)."""
    if not math.isfinite(s):
        raise InvalidTemperatureError(
            "1/T is beyond the largest float: the exact method cannot reach this temperature"
        )
    tree = resolve_plan(plan, s)
    if tree is None:
        return plan_tree(ps, s)
    return tree, tree_cost(tree, ps)


def _law(probs: torch.Tensor) -> torch.Tensor:
    p = torch.as_tensor(probs, dtype=torch.float64).flatten()
    if (p < 0).any() or not torch.isclose(p.sum(), torch.tensor(1.0, dtype=torch.float64)):
        raise InvalidArgumentError("probs must be non-negative and sum to 1")
    return p


def expected_exact_cost(
    probs: torch.Tensor, temperature: float, *, plan: str | Tree = "auto"
) -> ExactCost:
    """Expected cost of ``method="exact"`` with ``plan`` for a known categorical law ``probs``
    (1-D). ``plan="auto"`` is the planner's tree for this law (the true power sums; a run with
    ``plan="auto"`` plans from a pilot instead, whose draws come on top)."""
    s = exact_exponent(temperature)
    p = _law(probs)
    ps = LawPowerSums(p)
    z = float(torch.exp(ps.log_s(torch.tensor([s])))[0, 0]) if math.isfinite(s) else 0.0
    if not math.isfinite(s):
        return ExactCost(math.inf, None, None, z, "flat")
    tree, cost = choose_tree(ps, s, plan)
    if tree.is_leaf:
        r = torch.tensor([s])
        rounds = float(torch.exp(-ps.log_s(r))[0, 0])
        per_round = float(leaf_costs(ps, r)[0, 0]) / rounds if rounds > 0 else math.inf
        return ExactCost(float(cost[0]), per_round, rounds, z, format_tree(tree))
    return ExactCost(float(cost[0]), None, None, z, format_tree(tree))


def expected_exact_draws(
    probs: torch.Tensor, temperature: float, *, plan: str | Tree = "auto"
) -> float:
    """Expected base draws per output of ``method="exact"`` with ``plan`` for the law ``probs``
    (``plan="flat"``: the flat rounds; ``"auto"``: the planner's tree; or a tree such as
    ``"(2+2)+(3+3)"``)."""
    return expected_exact_cost(probs, temperature, plan=plan).draws_per_output


def estimate_exact_draws(
    counts: torch.Tensor, temperature: float, *, plan: str | Tree = "auto"
) -> torch.Tensor:
    """Estimate the exact sampler's draws per output from pilot batches, one per problem.

    counts: LongTensor (B, N) (or (N,)): for each pilot sample, how many of the N pilot samples of
    its problem share its key. Returns float64 (B,). The power sums are estimated as in
    :class:`~implicit_temperature.core.plan.PilotPowerSums` (unbiased for integer r); outcomes the
    pilot never saw are missing, so for heavy tails the estimate is optimistic.
    """
    s = exact_exponent(temperature)
    if counts.dim() == 1:
        counts = counts.unsqueeze(0)
    if not math.isfinite(s):
        return torch.full((counts.shape[0],), math.inf, dtype=torch.float64)
    return choose_tree(PilotPowerSums(counts), s, plan)[1]


def pilot_power_sums(keys: torch.Tensor) -> PilotPowerSums:
    """Power-sum estimates from pilot keys (B, N, d) (counted on the keys' device, planned on the
    host: the planner's many small steps are cheaper there than as GPU kernels)."""
    counts, _ = group_counts(keys)
    return PilotPowerSums(counts.cpu())
