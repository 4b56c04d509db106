"""method="auto": the decision, as data. ``decide(pilot, request) -> Plan``; then the Plan runs.

The decision is made before any exact draw and then kept (an exact run that overruns raises; it
never switches to batch: keeping only runs that finish in budget would favour outcomes with
short rounds). Each method is a :class:`Candidate` with an estimated cost and the most it may
cost and still be chosen; the first candidate, in order of preference, whose cost fits wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import DrawBudgetExceeded
from .pilot import MIN_PILOT_PAIRS, PILOT_MIN, Pilot, colliding_pairs
from .plan import Tree, format_tree, leaf
from .request import Request
from .tolerance import Ladder, batch_ladder

#: method="auto" without max_draws picks exact when its planned draws are at most this many times
#: the batch method's draws (num_samples per output): exactness is worth some cost.
AUTO_BUDGET_FACTOR = 10
#: method="auto" with max_draws picks exact when its planned draws are at most this share of what
#: is left of max_draws after the pilot, so that a run at twice its estimate still fits.
AUTO_EXACT_SHARE = 0.5


@dataclass(frozen=True)
class Candidate:
    """One way to answer: ``method`` ("exact" with ``tree``, or "batch" with ``num_samples``),
    its estimated draws ``cost`` (all outputs and problems), the most it may cost and still be
    chosen (``allowance``), and that allowance in words."""

    method: str
    cost: float
    allowance: float
    allowance_text: str
    tree: Tree | None = None
    num_samples: int | None = None

    @property
    def fits(self) -> bool:
        return self.cost <= self.allowance


@dataclass(frozen=True)
class Plan:
    """The decision: the method to run, its tree (exact) or N (batch), its estimated draws
    (``expected_draws``, pilot not included; None when unknown), the pilot it was made from, and
    ``reason``, a sentence saying why (becomes ``TemperatureResult.reason``)."""

    method: str
    reason: str | None
    pilot: Pilot
    tree: Tree | None = None
    num_samples: int | None = None
    expected_draws: float | None = None


def decide_without_pilot(request: Request, num_problems: int, pilot: Pilot) -> Plan | None:
    """The cases auto settles before any pilot (T > 1, T = 1, exact out of reach), else None."""
    t, o = request.temperature, request.options
    if t > 1.0:
        reason = f"T={t:g} > 1: no exact sample-only method exists above T = 1"
        return Plan("batch", reason, pilot, num_samples=o.num_samples)
    if t == 1.0:  # one draw per output: exact is free
        if o.max_draws is not None and pilot.total_draws + o.num_outputs > o.max_draws:
            raise DrawBudgetExceeded(
                f"max_draws={o.max_draws} is below the {o.num_outputs} draws T = 1 needs",
                {"draws": 0, "model_calls": 0},
            )
        reason = "T = 1: the exact method costs one draw per output"
        expected = float(o.num_outputs * num_problems)
        return Plan("exact", reason, pilot, tree=leaf(1.0), expected_draws=expected)
    batch_cost = request.batch_draws(num_problems)
    if o.max_draws is not None:
        exact_limit = AUTO_EXACT_SHARE * o.max_draws
    else:
        exact_limit = AUTO_BUDGET_FACTOR * batch_cost
    least = request.least_draws() * o.num_outputs * num_problems
    if least <= exact_limit:
        return None
    if o.max_draws is not None and batch_cost > o.max_draws:
        raise DrawBudgetExceeded(
            f'method="auto": neither method fits max_draws={o.max_draws}: exact needs at '
            f"least {least:.3g} draws (1/T = {request.s:.3g} per output), batch needs "
            f"{batch_cost}; raise max_draws or lower num_samples / num_outputs",
            {"draws": pilot.total_draws, "model_calls": pilot.total_calls},
        )
    reason = (
        f"T={t:.3g}: exact needs at least 1/T = {request.s:.3g} draws per output "
        f"({least:.3g} in all), beyond the {exact_limit:.3g} auto allows"
    )
    return Plan("batch", reason, pilot, num_samples=o.num_samples)


def candidates(pilot: Pilot, request: Request) -> list[Candidate]:
    """Exact with the pilot's tree, then batch with N = num_samples, in order of preference."""
    o = request.options
    batch_cost = request.batch_draws(pilot.num_problems)
    expected = math.inf if pilot.cost is None else float(pilot.cost.sum()) * o.num_outputs
    remaining = None if o.max_draws is None else o.max_draws - pilot.total_draws
    if remaining is not None:
        limit = AUTO_EXACT_SHARE * remaining
        limit_text = f"{AUTO_EXACT_SHARE:g} x the {remaining} draws left of max_draws"
    else:
        limit = AUTO_BUDGET_FACTOR * batch_cost
        limit_text = f"{AUTO_BUDGET_FACTOR} x the batch method's {batch_cost} draws"
    left = math.inf if remaining is None else float(remaining)
    return [
        Candidate("exact", expected, limit, limit_text, tree=pilot.tree),
        Candidate("batch", float(batch_cost), left, "the draws left", num_samples=o.num_samples),
    ]


#: Exact is preferred to a batch run estimated to meet the tolerance while it costs at most this
#: many times as much (exactness is worth a little; more would break "the cheapest method").
EXACT_PREFERENCE = 1.5


def decide(pilot: Pilot, request: Request) -> Plan:
    """The Plan auto commits to after ``pilot``: the first candidate that fits, with the reason;
    :class:`DrawBudgetExceeded` when none fits. When the pilot can estimate the batch rule's
    error, a batch N estimated to meet the tolerance is preferred to an exact plan that costs
    more than EXACT_PREFERENCE times as much."""
    cands = candidates(pilot, request)
    exact = cands[0]
    plan_text = format_tree(exact.tree) if exact.tree is not None else "?"
    estimate = (
        f"exact with plan {plan_text!r} needs ~{exact.cost:.3g} draws (pilot of {pilot.draws})"
    )
    cheaper = _cheaper_batch(pilot, request, exact, cands[1])
    if cheaper is not None:
        return cheaper
    for c in cands:
        if not c.fits:
            continue
        if c.method == "exact":
            reason = f"{estimate} <= {c.allowance_text}"
            return Plan("exact", reason, pilot, tree=c.tree, expected_draws=c.cost)
        reason = f"{estimate} > {exact.allowance_text}"
        n = c.num_samples
        if _no_collisions(pilot) and n is not None and n > PILOT_MIN:
            n = PILOT_MIN
            reason += (
                f"; the pilot had (almost) no repeated key, so temperature cannot act: a pool "
                f"of {n} (a larger one would cost more and still be a plain draw)"
            )
        return Plan(c.method, reason, pilot, num_samples=n, expected_draws=exact.cost)
    raise DrawBudgetExceeded(
        f'method="auto": neither method fits max_draws={request.max_draws} after the pilot '
        f"({pilot.total_draws} drawn): exact needs ~{exact.cost:.3g} draws (plan "
        f"{plan_text!r}), batch needs {int(cands[1].cost)}; raise max_draws or lower "
        "num_samples / num_outputs",
        {"draws": pilot.total_draws, "model_calls": pilot.total_calls},
    )


def _no_collisions(pilot: Pilot) -> bool:
    """Some problem's pilot has fewer than MIN_PILOT_PAIRS colliding pairs."""
    if pilot.counts is None:
        return False
    return float(colliding_pairs(pilot.counts).min()) < MIN_PILOT_PAIRS


def _cheaper_batch(
    pilot: Pilot, request: Request, exact: Candidate, batch: Candidate
) -> Plan | None:
    """Batch with the smallest N (num_samples, 2x, 4x, ...) the pilot estimates meets the
    tolerance, when exact fits but costs more than EXACT_PREFERENCE times that N; else None."""
    if pilot.counts is None or not exact.fits or batch.num_samples is None:
        return None
    o = request.options
    per_n = batch.cost / batch.num_samples
    if exact.cost <= EXACT_PREFERENCE * batch.cost:
        return None
    largest = int(min(batch.allowance, exact.cost / EXACT_PREFERENCE) // per_n)
    ladder = batch_ladder(pilot.counts, request.s, o.tolerance, batch.num_samples, largest)
    if ladder.reached is None:
        return None
    cost = ladder.reached * per_n
    reason = (
        f"batch with N = {ladder.reached} is estimated to meet tolerance={o.tolerance:g} at "
        f"{cost:.3g} draws, below exact's ~{exact.cost:.3g} / {EXACT_PREFERENCE:g} (pilot of "
        f"{pilot.draws})"
    )
    return Plan("batch", reason, pilot, num_samples=ladder.reached, expected_draws=exact.cost)


#: Re-planning after a batch attempt that missed the tolerance: N is searched up to this many
#: times the attempt's N beyond what the budget allows, to say what reaching it would cost.
LADDER_BEYOND = 16


@dataclass(frozen=True)
class Refinement:
    """What auto does after a batch attempt missed the tolerance: ``plan`` (None: nothing
    reaches the tolerance within the budget) and ``cost``, what reaching it would cost, in words
    (for the AccuracyWarning)."""

    plan: Plan | None
    cost: str


def refine(
    counts: torch.Tensor, request: Request, pilot: Pilot, remaining: int, tried: int
) -> Refinement:
    """Re-plan from a batch attempt's pools (per-draw counts (B, M), a pilot far larger than the
    planning one): the cheapest of exact (cost from these counts, at most AUTO_EXACT_SHARE of
    ``remaining``) and batch with the smallest N = 2 tried, 4 tried, ... whose estimated TV meets
    the tolerance (at most ``remaining``)."""
    o, b = request.options, counts.shape[0]
    per_n = (1 if o.share_pool else o.num_outputs) * b  # draws per unit of N
    exact_cost = math.inf
    if request.temperature < 1.0 and math.isfinite(request.s) and pilot.cost is not None:
        exact_cost = float(pilot.cost.sum()) * o.num_outputs
    affordable = remaining // per_n
    ladder = batch_ladder(
        counts, request.s, o.tolerance, 2 * tried, max(affordable, LADDER_BEYOND * tried)
    )
    batch_cost = math.inf if ladder.reached is None else float(ladder.reached * per_n)
    exact_fits = exact_cost <= AUTO_EXACT_SHARE * remaining
    batch_fits = batch_cost <= remaining
    text = _cost_text(exact_cost, ladder, per_n, b * o.num_outputs, remaining)
    if exact_fits and (not batch_fits or exact_cost <= batch_cost):
        reason = (
            f"a batch attempt with N = {tried} missed tolerance={o.tolerance:g}; exact with plan "
            f"{format_tree(pilot.tree) if pilot.tree else '?'!r} needs ~{exact_cost:.3g} draws "
            f"(planned from its {counts.shape[1]} pooled draws per problem)"
        )
        plan = Plan("exact", reason, pilot, tree=pilot.tree, expected_draws=exact_cost)
        return Refinement(plan, text)
    if batch_fits:
        assert ladder.reached is not None
        reason = (
            f"a batch attempt with N = {tried} missed tolerance={o.tolerance:g}; batch with "
            f"N = {ladder.reached} is estimated to meet it (from {counts.shape[1]} pooled draws "
            "per problem)"
        )
        plan = Plan("batch", reason, pilot, num_samples=ladder.reached, expected_draws=batch_cost)
        return Refinement(plan, text)
    return Refinement(None, text)


def _cost_text(exact: float, ladder: Ladder, per_n: int, outputs: int, remaining: int) -> str:
    """What reaching the tolerance would cost, per output, in words."""
    parts = []
    if ladder.reached is not None:
        parts.append(f"batch with N = {ladder.reached} (~{ladder.reached * per_n / outputs:.3g}")
        parts[-1] += " draws per output)"
    elif ladder.sizes:
        parts.append(f"batch with N > {ladder.sizes[-1]}")
    if math.isfinite(exact):
        parts.append(f"exact (~{exact / outputs:.3g} draws per output)")
    if not parts:
        return ""
    return f"reaching it would take {' or '.join(parts)}; {remaining} draws were left of the budget"
