"""The planning pilot: a small batch of draws whose repeats estimate what each tree costs.

The pilot's draws only plan: they are never reused as samples (the plan depends on them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .cost import choose_tree, pilot_power_sums
from .drawing import DrawSource
from .errors import DrawBudgetExceeded
from .plan import Tree, acceptance, leaf
from .request import Request

#: The pilot starts at PILOT_MIN draws per problem and grows to PILOT_SHARE of the planned cost
#: (never beyond num_samples, nor beyond PILOT_BUDGET_SHARE of max_draws), so that for a single
#: output it stays small and for many it plans well.
PILOT_MIN = 16
PILOT_SHARE = 0.05
PILOT_BUDGET_SHARE = 0.25


@dataclass(frozen=True)
class Pilot:
    """What a pilot measured: the tree it plans (None where none exists), that tree's cost per
    output (B,) (None without a pilot), the planned acceptance rates per node id and per leaf
    exponent (sizing only), the pilot's draws, and the source's draws and calls once it was done
    (pilot and anything before) and its number of problems B."""

    tree: Tree | None
    cost: torch.Tensor | None = None
    rates: dict[int, torch.Tensor] = field(default_factory=dict)
    leaf_rates: dict[float, torch.Tensor] = field(default_factory=dict)
    draws: int = 0
    total_draws: int = 0
    total_calls: int = 0
    num_problems: int = 1

    @staticmethod
    def none(request: Request, source: DrawSource) -> Pilot:
        """No pilot: the explicit tree, or the flat leaf 1/T (None where no tree exists: T > 1
        or 1/T infinite)."""
        tree = request.fixed_tree
        if tree is None and 1.0 <= request.s < math.inf:
            tree = leaf(request.s)
        return Pilot(
            tree,
            total_draws=source.draws,
            total_calls=source.calls,
            num_problems=source.num_problems or 1,
        )


def pilot_cap(request: Request, draws: int, num_problems: int) -> int:
    """Most pilot draws per problem: num_samples, within PILOT_BUDGET_SHARE of what is left."""
    cap = request.options.num_samples
    if request.max_draws is not None:
        cap = min(cap, int(PILOT_BUDGET_SHARE * (request.max_draws - draws)) // num_problems)
    return cap


def next_pilot_size(have: int, cap: int, planned: float, num_problems: int) -> int | None:
    """The pilot size to grow to after ``have`` draws per problem, or None to stop: it grows to
    PILOT_SHARE of the planned draws (``planned``, all problems) while that at least doubles it."""
    if have >= cap:
        return None
    desired = (
        cap
        if not math.isfinite(planned)
        else min(cap, math.ceil(PILOT_SHARE * planned / num_problems))
    )
    return desired if desired >= 2 * have else None


def run_pilot(source: DrawSource, request: Request, ref_cost: float | None = None) -> Pilot:
    """Draw a pilot and plan the tree (plan="auto") or cost the given one. ``ref_cost`` (the
    batch method's draws, for method="auto") caps how far the pilot grows."""
    start = source.draws
    cap = pilot_cap(request, start, source.num_problems or 1)
    if cap < 2:  # no room for a pilot: no estimate
        return Pilot.none(request, source)
    parts: list[torch.Tensor] = []
    have, target = 0, min(PILOT_MIN, cap)
    while True:
        _, k = source(target - have)
        parts.append(k)
        have, b = target, k.shape[0]
        if request.max_draws is not None:  # B is known now: the pilot's share per problem
            if source.draws > request.max_draws:
                raise DrawBudgetExceeded(
                    f"max_draws={request.max_draws} is below a pilot of {have} draws for each "
                    f"of the {b} problems; raise max_draws",
                    {"draws": source.draws, "model_calls": source.calls},
                )
            cap = min(cap, pilot_cap(request, start, b))
        ps = pilot_power_sums(torch.cat(parts, 1))
        tree, cost = choose_tree(ps, request.s, request.options.plan)
        planned = float(cost.sum()) * request.num_outputs
        grow = next_pilot_size(have, cap, min(planned, ref_cost or math.inf), b)
        if grow is None:
            break
        target = grow
    leaves = sorted({t.s for t in tree.nodes() if t.is_leaf})
    log_s = ps.log_s(torch.tensor(leaves, dtype=torch.float64))
    leaf_rates = {r: torch.exp(log_s[:, i]) for i, r in enumerate(leaves)}
    rates = acceptance(tree, ps)
    return Pilot(tree, cost, rates, leaf_rates, source.draws - start, source.draws, source.calls, b)
