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
from .pilot import (
    MIN_PILOT_PAIRS,
    PILOT_MIN,
    Pilot,
    batch_pilot_size,
    colliding_pairs,
    plan_from_counts,
)
from .plan import Tree, format_tree, leaf
from .request import Request
from .tolerance import (
    ACCURACY_MAX_DRAWS,
    LADDER_BASE,
    LADDER_MARGIN,
    Ladder,
    batch_ladder,
    observed_counts,
)

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
    """The decision: the method to run, its tree (exact) or N and weights ``estimator``
    (batch; None: the options' rule), its estimated draws (``expected_draws``, pilot not
    included; None when unknown), the pilot it was made from, ``reason``, a sentence saying
    why (becomes ``TemperatureResult.reason``), and ``reuse_pilot``: batch only, the pools are
    cut from the pilot's own draws (:meth:`~.drawing.DrawSource.replay`; fresh draws only for
    what the pilot lacks), chosen only where the pilot has (almost) no repeated key."""

    method: str
    reason: str | None
    pilot: Pilot
    tree: Tree | None = None
    num_samples: int | None = None
    expected_draws: float | None = None
    estimator: str | None = None
    reuse_pilot: bool = False


def auto_budget(request: Request, num_problems: int) -> int:
    """What method="auto" may spend in all on ``num_problems`` problems: max_draws, else
    AUTO_BUDGET_FACTOR x the batch method's draws."""
    if request.max_draws is not None:
        return request.max_draws
    return AUTO_BUDGET_FACTOR * request.batch_draws(num_problems)


def pilot_allowance(request: Request, num_problems: int) -> tuple[float, float]:
    """What auto's pilot is sized against: the batch method's draws (``ref_cost``) and the most
    auto lets exact cost (``allowance``: AUTO_BUDGET_FACTOR x those draws, or AUTO_EXACT_SHARE
    of max_draws)."""
    batch_cost = float(request.batch_draws(num_problems))
    if request.max_draws is None:
        return batch_cost, AUTO_BUDGET_FACTOR * batch_cost
    return batch_cost, AUTO_EXACT_SHARE * request.max_draws


def batch_plan_growth(pilot: Pilot, plan: Plan, request: Request, spent: int) -> int | None:
    """The pilot size per problem a batch ``plan`` wants its pilot grown to before it is kept
    (:func:`~.pilot.batch_pilot_size`), ``spent`` draws having been made; None: keep it (and
    always for exact plans or plans without an estimate)."""
    if plan.method != "batch" or not plan.expected_draws:
        return None
    left = auto_budget(request, pilot.num_problems) - spent - plan.expected_draws
    contested = candidates(pilot, request)[0].fits
    return batch_pilot_size(pilot, plan.expected_draws, left, ACCURACY_MAX_DRAWS, contested)


def decide_without_pilot(request: Request, num_problems: int, pilot: Pilot) -> Plan | None:
    """The cases auto settles before any pilot (T > 1, T = 1, exact out of reach), else None."""
    t, o = request.temperature, request.options
    if t > 1.0:
        reason = f"T={t:g} > 1: no exact sample-only method exists above T = 1"
        return Plan("batch", reason, pilot, num_samples=request.pool_size)
    if t == 1.0 and request.batch_only:  # any pool's pick is a draw of P
        reason = "T = 1: a pick from a pool of any size is a draw of P, so N = 1"
        return Plan("batch", reason, pilot, num_samples=1, expected_draws=float(o.num_outputs))
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
    if least <= exact_limit or request.batch_only:
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
    return Plan("batch", reason, pilot, num_samples=request.pool_size)


def candidates(pilot: Pilot, request: Request) -> list[Candidate]:
    """Exact with the pilot's tree, then batch with N = num_samples, in order of preference."""
    o = request.options
    batch_cost = request.batch_draws(pilot.num_problems)
    expected = math.inf if pilot.cost is None else float(pilot.cost.sum()) * o.num_outputs
    if request.batch_only:
        expected = math.inf
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
        Candidate(
            "batch", float(batch_cost), left, "the draws left", num_samples=request.pool_size
        ),
    ]


#: Exact is preferred to a batch run estimated to meet the tolerance while it costs at most this
#: many times as much (exactness is worth a little; more would break "the cheapest method",
#: which auto must stay within 1.5x of, pilot included).
EXACT_PREFERENCE = 1.2


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
        if n is not None and pilot.samples is not None:  # no repeats in any problem
            return _reuse_plan(pilot, request, n, reason)
        per_n = c.cost / c.num_samples if c.num_samples else 0.0
        cost = None if n is None else n * per_n
        return Plan(c.method, reason, pilot, num_samples=n, expected_draws=cost)
    raise DrawBudgetExceeded(
        f'method="auto": neither method fits max_draws={request.max_draws} after the pilot '
        f"({pilot.total_draws} drawn): exact needs ~{exact.cost:.3g} draws (plan "
        f"{plan_text!r}), batch needs {int(cands[1].cost)}; raise max_draws or lower "
        "num_samples / num_outputs",
        {"draws": pilot.total_draws, "model_calls": pilot.total_calls},
    )


def _reuse_plan(pilot: Pilot, request: Request, n: int, reason: str) -> Plan:
    """Batch with pools of ``n`` cut from the pilot's own draws (it has (almost) no repeated
    key in any problem): the draws it lacks are the plan's only fresh ones. A pick from a pool
    of distinct keys is uniform, a plain draw of P, as from a fresh pool; the pilot's size
    depends on its counts only, never on the values."""
    assert pilot.keys is not None
    o = request.options
    b, have = pilot.keys.shape[0], pilot.keys.shape[1]
    need = n * (1 if o.share_pool else o.num_outputs)
    fresh = max(0, need - have) * b
    reason += (
        f"; the pools are the pilot's own draws ({min(need, have)} per problem"
        f"{f', {fresh} fresh' if fresh else ', none fresh'}): with every key distinct a pick "
        "is a plain draw of P, as from fresh pools"
    )
    return Plan(
        "batch", reason, pilot, num_samples=n, expected_draws=float(fresh), reuse_pilot=True
    )


def _no_collisions(pilot: Pilot) -> bool:
    """Some problem's pilot has fewer than MIN_PILOT_PAIRS colliding pairs."""
    if pilot.counts is None:
        return False
    return float(colliding_pairs(pilot.counts).min()) < MIN_PILOT_PAIRS


def ladder_estimators(request: Request) -> tuple[str, ...]:
    """The batch rules auto may choose between: the binomial rule for estimator="auto", else the
    one given (none for "plugin", whose error is not estimated).

    The jackknifed rule is cheaper for the same true TV on spread laws, but its error estimate
    can be several times too low there at low T (flat head at T = 0.1, 20 outputs: estimates
    of 0.01-0.03 where the truth is 0.06), so auto does not choose it on that estimate; a user
    who asks for it (estimator="jackknife") gets it, with that caveat documented."""
    e = request.options.estimator
    if e == "auto":
        return ("binomial",)
    return (e,) if e in ("binomial", "jackknife") else ()


def cheapest_ladder(
    counts: torch.Tensor, request: Request, start: int, largest: float
) -> Ladder | None:
    """The ladder (:func:`~.tolerance.batch_ladder`) of each rule auto may use, from the counts
    (B, M), for N in [start, largest]; the one reaching the tolerance at the smallest N (the
    first rule on a tie), else the last one searched (None when no rule can be searched)."""
    best: Ladder | None = None
    for e in ladder_estimators(request):
        ladder = batch_ladder(counts, request.s, request.options.tolerance, start, largest, e)
        if ladder.reached is not None:
            if best is None or best.reached is None or ladder.reached < best.reached:
                best = ladder
                largest = ladder.reached - 1  # another rule must beat it
        elif best is None:
            best = ladder
    return best


def _cheaper_batch(
    pilot: Pilot, request: Request, exact: Candidate, batch: Candidate
) -> Plan | None:
    """Batch with the smallest N of the ladder, and the rule (binomial or jackknife), that the
    pilot estimates meets the tolerance, when that fits the draws left and costs less than
    exact / EXACT_PREFERENCE (or exact does not fit); else None."""
    if pilot.counts is None or batch.num_samples is None:
        return None
    o = request.options
    per_n = batch.cost / batch.num_samples
    budget = o.max_draws if o.max_draws is not None else AUTO_BUDGET_FACTOR * batch.cost
    largest = (budget - pilot.total_draws) / per_n
    if exact.fits:
        largest = min(largest, exact.cost / EXACT_PREFERENCE / per_n)
    ladder = cheapest_ladder(pilot.counts, request, LADDER_BASE, largest)
    if ladder is None or ladder.reached is None:
        return None
    n = ladder.reached
    cost = n * per_n
    rule = "" if ladder.estimator == "binomial" else f" ({ladder.estimator} weights)"
    reason = (
        f"batch with N = {n}{rule} is estimated to meet tolerance={o.tolerance:g} at "
        f"{cost:.3g} draws"
    )
    if exact.fits:
        reason += f", below exact's ~{exact.cost:.3g} / {EXACT_PREFERENCE:g}"
    elif math.isfinite(exact.cost):
        reason += f"; exact's ~{exact.cost:.3g} is beyond {exact.allowance_text}"
    reason += f" (pilot of {pilot.draws})"
    return Plan(
        "batch",
        reason,
        pilot,
        num_samples=n,
        expected_draws=cost,
        estimator=ladder.estimator,
    )


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
    ``remaining``; preferred within EXACT_PREFERENCE) and batch with the smallest N of the
    ladder above ``tried``, with either rule auto may use, whose estimated TV meets the
    tolerance (at most ``remaining``)."""
    o, b = request.options, counts.shape[0]
    per_n = (1 if o.share_pool else o.num_outputs) * b  # draws per unit of N
    exact_cost = math.inf
    exact_ok = request.temperature < 1.0 and math.isfinite(request.s) and not request.batch_only
    if exact_ok and pilot.cost is not None:
        exact_cost = float(pilot.cost.sum()) * o.num_outputs
    affordable = remaining // per_n
    ladder = cheapest_ladder(counts, request, tried + 1, max(affordable, LADDER_BEYOND * tried))
    reached = None if ladder is None else ladder.reached
    batch_cost = math.inf if reached is None else float(reached * per_n)
    exact_fits = exact_cost <= AUTO_EXACT_SHARE * remaining
    batch_fits = batch_cost <= remaining
    text = _cost_text(exact_cost, ladder, per_n, b * o.num_outputs, remaining)
    if exact_fits and (not batch_fits or exact_cost <= EXACT_PREFERENCE * batch_cost):
        reason = (
            f"a batch attempt with N = {tried} missed {LADDER_MARGIN:g} x tolerance="
            f"{o.tolerance:g}; exact with plan "
            f"{format_tree(pilot.tree) if pilot.tree else '?'!r} needs ~{exact_cost:.3g} draws "
            f"(planned from its {counts.shape[1]} pooled draws per problem)"
        )
        plan = Plan("exact", reason, pilot, tree=pilot.tree, expected_draws=exact_cost)
        return Refinement(plan, text)
    if batch_fits:
        assert ladder is not None and reached is not None
        rule = "" if ladder.estimator == "binomial" else f" ({ladder.estimator} weights)"
        reason = (
            f"a batch attempt with N = {tried} missed {LADDER_MARGIN:g} x tolerance="
            f"{o.tolerance:g}; batch with "
            f"N = {reached}{rule} is estimated to meet it (from {counts.shape[1]} pooled draws "
            "per problem)"
        )
        plan = Plan(
            "batch",
            reason,
            pilot,
            num_samples=reached,
            expected_draws=batch_cost,
            estimator=ladder.estimator,
        )
        return Refinement(plan, text)
    return Refinement(None, text)


def refine_pools(
    keys: torch.Tensor, request: Request, none: Pilot, remaining: int, tried: int
) -> Refinement:
    """:func:`refine` from a batch attempt's pooled keys (B, M, d): exact is costed from their
    counts below T = 1 (``none``, the pilot without draws, gives the draws and calls spent so
    far, and stands in above)."""
    counts = observed_counts(keys).cpu()
    pilot = none
    if request.temperature < 1.0 and math.isfinite(request.s):
        pilot = plan_from_counts(
            counts, request, draws=0, total_draws=none.total_draws, calls=none.total_calls
        )
    return refine(counts, request, pilot, remaining, tried)


def _cost_text(
    exact: float, ladder: Ladder | None, per_n: int, outputs: int, remaining: int
) -> str:
    """What reaching the tolerance would cost, per output, in words."""
    parts = []
    if ladder is None:
        pass
    elif ladder.reached is not None:
        rule = "" if ladder.estimator == "binomial" else f", {ladder.estimator} weights"
        parts.append(f"batch with N = {ladder.reached} (~{ladder.reached * per_n / outputs:.3g}")
        parts[-1] += f" draws per output{rule})"
    elif ladder.sizes:
        parts.append(f"batch with N > {ladder.sizes[-1]}")
    if math.isfinite(exact):
        parts.append(f"exact (~{exact / outputs:.3g} draws per output)")
    if not parts:
        return ""
    return f"reaching it would take {' or '.join(parts)}; {remaining} draws were left of the budget"
