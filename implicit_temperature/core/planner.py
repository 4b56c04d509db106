"""The planner: the cheapest collision tree for s = 1/T under given power sums, and the expected
cost of any ``plan=`` (a tree, "flat" or "auto", which plans) for a known law or from a pilot.

:func:`plan_tree` searches trees by dynamic programming over splits on a grid (the cost formulas
it minimises are those of :mod:`.cost`; the notation of the trees is :mod:`.plan`).
"""

from __future__ import annotations

import math

import torch

from .cost import (
    ExactCost,
    LawPowerSums,
    PilotPowerSums,
    PowerSums,
    exact_exponent,
    leaf_costs,
    snap_tensor,
    tree_cost,
)
from .errors import InvalidArgumentError, InvalidTemperatureError
from .plan import SNAP_RTOL, Tree, format_tree, leaf, pair, rescale, resolve_plan, snap

#: Planner grid: splits are searched on multiples of about this step (``GRID_STEP``).
GRID_STEP = 0.05
#: Above this exponent the planner only considers halving (X = Y + Y, balanced); below it, every
#: split on the grid. Balanced splits are optimal when one outcome dominates, which is what
#: happens at large 1/T (S(a) S(b) / S(a + b) tends to the number of most likely outcomes).
GRID_MAX_EXPONENT = 24.0


def plan_tree(ps: PowerSums, s: float) -> tuple[Tree, torch.Tensor]:
    """The cheapest tree for exponent s >= 1 under ``ps`` and its cost per output (B,).

    Dynamic programming: with s' = s / 2^k <= ``GRID_MAX_EXPONENT`` and the grid r_j = j s' / M
    (M = 2 ceil(s' / (2 ``GRID_STEP``)), even so that s'/2 is on the grid),
    c(r_j) = min(leaf cost, min over i of (c(r_i) + c(r_{j-i})) S(r_i) S(r_{j-i}) / S(r_j));
    then k halving steps up to s. With several
    problems (B > 1) one tree serves all of them, chosen by the summed cost (a heuristic: the best
    tree for the sum need not decompose). Ties go to the flat round. O(M^2) work, M <= 480.
    """
    s = snap(float(s))
    if not math.isfinite(s) or s < 1.0:
        raise InvalidArgumentError(f"the planner needs a finite exponent s = 1/T >= 1, got {s}")
    if s <= 2.0:  # the only split, 1 + 1 at s = 2, costs the same as the flat round
        return leaf(s), leaf_costs(ps, torch.tensor([s]))[:, 0]
    base, halvings = s, 0
    while base > GRID_MAX_EXPONENT:
        base /= 2.0
        halvings += 1
    tree, c = _plan_on_grid(ps, base)
    for _ in range(halvings):
        tree, c = _double(ps, tree, c)
    if tree.s != s:
        tree = rescale(tree, s / tree.s)
    return tree, c


def _first_leaf_index(r: torch.Tensor, h: float) -> int:
    """The 1-based index of the smallest grid exponent r_i = i h that is >= 1 (a leaf's least)."""
    i_min = max(1, math.ceil((1.0 - SNAP_RTOL) / h))
    while i_min > 1 and float(r[i_min - 2]) >= 1.0:
        i_min -= 1
    while float(r[i_min - 1]) < 1.0:
        i_min += 1
    return i_min


def _plan_on_grid(ps: PowerSums, base: float) -> tuple[Tree, torch.Tensor]:
    """The dynamic programme of :func:`plan_tree` on the grid r_j = j base / M, j = 1..M."""
    m = 2 * max(1, math.ceil(base / (2 * GRID_STEP) - 1e-9))  # even: the halves are on the grid
    h = base / m
    r = snap_tensor(h * torch.arange(1, m + 1, dtype=torch.float64))
    log_s = ps.log_s(r)  # (B, M)
    flat = leaf_costs(ps, r)
    cost = flat.clone()
    choice = [0] * (m + 1)  # choice[j]: the split i of r_j (0: the flat leaf)
    i_min = _first_leaf_index(r, h)
    for j in range(2 * i_min, m + 1):
        i = torch.arange(i_min, j // 2 + 1)
        ratio = torch.exp(log_s[:, i - 1] + log_s[:, j - i - 1] - log_s[:, j - 1 : j])
        cand = (cost[:, i - 1] + cost[:, j - i - 1]) * ratio
        total = cand.sum(0)
        best = int(torch.argmin(total))
        if bool(total[best] < flat[:, j - 1].sum() * (1 - 1e-9)):
            cost[:, j - 1] = cand[:, best]
            choice[j] = int(i[best])
    built: dict[int, Tree] = {}

    def build(j: int) -> Tree:
        if j not in built:
            i = choice[j]
            built[j] = leaf(float(r[j - 1])) if i == 0 else pair(build(i), build(j - i))
        return built[j]

    return build(m), cost[:, m - 1]


def _double(ps: PowerSums, tree: Tree, c: torch.Tensor) -> tuple[Tree, torch.Tensor]:
    """One halving step of :func:`plan_tree`: ``tree + tree`` or the flat leaf at 2 tree.s,
    whichever costs less summed over the problems (``c``: the cost per output (B,) of ``tree``)."""
    up = tree.s * 2.0
    ex = torch.tensor([tree.s, up], dtype=torch.float64)
    ls = ps.log_s(ex)
    doubled = 2.0 * c * torch.exp(2 * ls[:, 0] - ls[:, 1])
    flat_up = leaf_costs(ps, ex[1:])[:, 0]
    if bool(doubled.sum() < flat_up.sum()):
        return pair(tree, tree), doubled
    return leaf(up), flat_up


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
    :class:`~implicit_temperature.core.cost.PilotPowerSums` (unbiased for integer r); outcomes the
    pilot never saw are missing, so for heavy tails the estimate is optimistic.
    """
    s = exact_exponent(temperature)
    if counts.dim() == 1:
        counts = counts.unsqueeze(0)
    if not math.isfinite(s):
        return torch.full((counts.shape[0],), math.inf, dtype=torch.float64)
    return choose_tree(PilotPowerSums(counts), s, plan)[1]
