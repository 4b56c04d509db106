"""The planning pilot: a small batch of draws whose repeats estimate what each tree costs.

The pilot's draws plan; the exact method never reuses them as samples (the plan depends on
them, so they are no longer fresh draws from P). One case reuses them: when every problem's
pilot has (almost) no repeated key, temperature cannot act, auto runs batch with small pools,
and those pools are cut from the pilot's own draws (:attr:`Pilot.samples`, served by
:meth:`~.drawing.DrawSource.replay`) instead of fresh ones. A pick from a pool of distinct keys
is a uniform pick, i.e. a plain draw of P, whether the pool is fresh or the pilot's (the
pilot's size depends on its counts only, never on the values); either way the result is not
P^(1/T), its accuracy is "unknown" and auto warns.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from .cost import PilotPowerSums, acceptance
from .drawing import DrawSource
from .errors import DrawBudgetExceeded
from .grouping import group_counts
from .plan import Tree, leaf
from .planner import choose_tree
from .request import Request
from .samples import Samples, cat_samples

#: The pilot starts at PILOT_MIN draws per problem and grows to PILOT_SHARE of the planned cost
#: (never beyond num_samples, nor beyond PILOT_BUDGET_SHARE of max_draws), so that for a single
#: output it stays small and for many it plans well.
PILOT_MIN = 16
PILOT_SHARE = 0.05
PILOT_BUDGET_SHARE = 0.25
#: A pilot with fewer colliding pairs than this says little about the exact cost (a continuous
#: model, a fine quantizer): it keeps growing (doubling, within its cap) until it has them or
#: until the cost floor they imply (:func:`collision_floor`) alone rules exact out. A first
#: request without a single colliding pair draws at once up to where that growth would end if
#: no key ever repeated (:func:`prefetch_size`): one more model call instead of several.
MIN_PILOT_PAIRS = 3


@dataclass(frozen=True)
class Pilot:
    """What a pilot measured: the tree it plans (None where none exists), that tree's cost per
    output (B,) (None without a pilot), the planned acceptance rates per node id and per leaf
    exponent (sizing only), the pilot's draws, and the source's draws and calls once it was done
    (pilot and anything before), its number of problems B, and ``counts`` (B, M): each pilot
    draw's count of its key within its problem (None without a pilot), from which
    :func:`collision_floor` and the accuracy estimates of :mod:`.tolerance` are computed, and
    ``keys`` (B, M, d), the pilot's keys (None without a pilot), so that it can be extended,
    and ``samples`` (B, M, ...), its draws, kept only while every problem's pilot has fewer than
    MIN_PILOT_PAIRS colliding pairs (the one case whose batch pools reuse them, see the module
    docstring; None otherwise, so that a pilot with repeats holds no samples)."""

    tree: Tree | None
    cost: torch.Tensor | None = None
    rates: dict[int, torch.Tensor] = field(default_factory=dict)
    leaf_rates: dict[float, torch.Tensor] = field(default_factory=dict)
    draws: int = 0
    total_draws: int = 0
    total_calls: int = 0
    num_problems: int = 1
    counts: torch.Tensor | None = None
    keys: torch.Tensor | None = None
    samples: Samples | None = None

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
    cap = request.pool_size
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


def colliding_pairs(counts: torch.Tensor) -> torch.Tensor:
    """Colliding pairs per problem, float64 (B,): sum over outcomes of C(c, 2), from per-draw
    counts (B, M) (each draw contributes (c - 1) / 2)."""
    return ((counts.double() - 1.0) / 2.0).sum(1)


def collision_floor(counts: torch.Tensor, s: float) -> torch.Tensor:
    """A lower bound (B,) on the exact method's draws per output implied by the pilot's
    collisions, for s = 1/T >= 2 (0 below).

    Every exact output needs at least one accepted round, and a round at s >= 2 is accepted with
    probability at most S(2) = sum_x P(x)^2 (two draws must agree), so an output costs at least
    1 / S(2) draws. The M pilot draws show k colliding pairs, with mean C(M, 2) S(2); ~95% upper
    bound of that mean is k + 2 sqrt(k) + 3 (Poisson), so the floor is
    C(M, 2) / (k + 2 sqrt(k) + 3). With no collision in M draws it is ~M^2 / 6: a pilot where every
    key is distinct means "at least of the order of M^2", never "cheap".
    """
    m = counts.shape[1]
    if s < 2.0:
        return torch.zeros(counts.shape[0], dtype=torch.float64)
    k = colliding_pairs(counts).cpu()
    return (m * (m - 1) / 2.0) / (k + 2.0 * k.sqrt() + 3.0)


def run_pilot(
    source: DrawSource,
    request: Request,
    ref_cost: float | None = None,
    allowance: float | None = None,
) -> Pilot:
    """Draw a pilot and plan the tree (plan="auto") or cost the given one. ``ref_cost`` (the
    batch method's draws, for method="auto") caps how far the pilot grows; ``allowance`` (the
    most auto lets exact cost) stops the growth for collisions once the floor exceeds it."""
    start = source.draws
    cap = pilot_cap(request, start, source.num_problems or 1)
    if cap < 2:  # no room for a pilot: no estimate
        return Pilot.none(request, source)
    parts: list[torch.Tensor] = []
    kept: list[Samples] | None = []  # the draws, while no problem has MIN_PILOT_PAIRS pairs
    have, target = 0, min(PILOT_MIN, cap)
    while True:
        x, k = source(target - have)
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
        counts = group_counts(torch.cat(parts, 1))[0].cpu()
        kept = None if kept is None or not reusable(counts) else [*kept, x]
        if len(parts) == 1:  # one request for a pilot without repeats
            source.prefetch(prefetch_size(counts, request, cap, ref_cost, allowance) - have)
        planned = planned_tree(counts, request)
        grow = next_size(counts, request, cap, ref_cost, allowance, planned)
        if grow is None:
            break
        target = grow
    drawn = source.draws - source.buffered_draws - start  # prefetched draws not used: not pilot's
    pilot = plan_from_counts(
        counts,
        request,
        draws=drawn,
        total_draws=source.draws,
        calls=source.calls,
        planned=planned,
    )
    samples = None if kept is None else cat_samples(kept)
    return dataclasses.replace(pilot, keys=torch.cat(parts, 1), samples=samples)


def reusable(counts: torch.Tensor) -> bool:
    """Every problem's pilot (per-draw counts (B, M)) has fewer than MIN_PILOT_PAIRS colliding
    pairs: the pilot whose draws batch pools may reuse (see the module docstring)."""
    return float(colliding_pairs(counts).max()) < MIN_PILOT_PAIRS


#: A batch plan's pilot is grown to this share of the plan's draws (while that at least doubles
#: it, up to ACCURACY_MAX_DRAWS per problem and PILOT_BUDGET_SHARE of what is left of the
#: budget): the TV estimates that chose N then come from a tenth of the draws the plan will
#: make (2 pools' worth at 20 outputs), not from a pilot far smaller than one pool, at a cost of
#: at most ~2 x this share (the pilot doubles as it grows).
BATCH_PILOT_SHARE = 0.1


#: A batch plan chosen over an exact plan that fits rests on two estimates from the pilot; the
#: exact one is poor from PILOT_MIN draws (off by 2x on a 4-outcome law), so the pilot is grown
#: to at least this many draws per problem (within the caps) before the choice is kept.
CONTESTED_PILOT = 4 * PILOT_MIN


def batch_pilot_size(
    pilot: Pilot, planned: float, left: float, limit: int, contested: bool = False
) -> int | None:
    """The pilot size per problem to grow to for a batch plan of ``planned`` draws (all
    problems), ``left`` draws being left of the budget (``contested``: exact fits too, so at
    least CONTESTED_PILOT); None: keep the pilot."""
    if pilot.keys is None:
        return None
    b, have = pilot.keys.shape[0], pilot.keys.shape[1]
    cap = min(limit, int(PILOT_BUDGET_SHARE * left) // b)
    want = math.ceil(BATCH_PILOT_SHARE * planned / b)
    want = min(cap, max(want, CONTESTED_PILOT if contested else 0))
    return want if want >= 2 * have else None


def extend_pilot(source: DrawSource, request: Request, pilot: Pilot, target: int) -> Pilot:
    """The pilot grown to ``target`` draws per problem (fresh draws appended), re-planned; its
    samples are kept while it stays :func:`reusable`."""
    assert pilot.keys is not None
    before = source.draws
    x, k = source(target - pilot.keys.shape[1])
    return grown_pilot(
        request,
        pilot,
        x,
        k,
        draws=source.draws - before,
        total_draws=source.draws,
        calls=source.calls,
    )


def grown_pilot(
    request: Request,
    pilot: Pilot,
    x: Samples,
    k: torch.Tensor,
    *,
    draws: int,
    total_draws: int,
    calls: int,
) -> Pilot:
    """``pilot`` with the new draws ``x`` (keys ``k`` (B, m, d), ``draws`` of them) appended,
    re-planned; its samples are kept while it stays :func:`reusable`."""
    assert pilot.keys is not None
    keys = torch.cat([pilot.keys, k.to(pilot.keys.device)], 1)
    counts = group_counts(keys)[0].cpu()
    grown = plan_from_counts(
        counts, request, draws=pilot.draws + draws, total_draws=total_draws, calls=calls
    )
    samples = None
    if pilot.samples is not None and reusable(counts):
        samples = pilot.samples.cat(x)
    return dataclasses.replace(grown, keys=keys, samples=samples)


class Planned(NamedTuple):
    """The pilot's power sums for some counts, and the tree they plan with its cost per output
    (B,) (before the collision floor): computed once per pilot size, read by
    :func:`next_size` and :func:`plan_from_counts`."""

    sums: PilotPowerSums
    tree: Tree
    cost: torch.Tensor


def planned_tree(counts: torch.Tensor, request: Request, row_stable: bool = False) -> Planned:
    """:class:`Planned` for per-draw counts (B, M) (``row_stable``: see
    :class:`~.cost.PilotPowerSums`)."""
    ps = PilotPowerSums(counts, row_stable=row_stable)
    return Planned(ps, *choose_tree(ps, request.s, request.options.plan))


def planned_rows(counts: torch.Tensor, request: Request) -> list[Planned]:
    """Each problem's :class:`Planned`, as it would be alone (row-stable power sums), for
    per-draw counts (B, M): one computation for all B where the tree does not depend on the
    counts (a given tree, or 1/T <= 2), else one per problem."""
    if request.fixed_tree is None and request.s > 2.0:
        return [planned_tree(counts[b : b + 1], request, True) for b in range(counts.shape[0])]
    ps, tree, cost = planned_tree(counts, request, True)
    assert isinstance(ps, PilotPowerSums)
    rows = [torch.tensor([b]) for b in range(counts.shape[0])]
    return [Planned(ps.rows(r), tree, cost[r]) for r in rows]


def plan_from_counts(
    counts: torch.Tensor,
    request: Request,
    *,
    draws: int,
    total_draws: int,
    calls: int,
    planned: Planned | None = None,
) -> Pilot:
    """The Pilot that observed draws with per-draw counts (B, M) plan: the tree for
    ``request.options.plan``, its cost per output (at least the :func:`collision_floor`), and the
    acceptance rates that size its pair requests. Also used to re-plan from a batch run's pools.
    ``planned``: :func:`planned_tree` of these counts, when the caller has it."""
    ps, tree, cost = planned if planned is not None else planned_tree(counts, request)
    cost = torch.maximum(cost, collision_floor(counts, request.s))
    leaves = sorted({t.s for t in tree.nodes() if t.is_leaf})
    log_s = ps.log_s(torch.tensor(leaves, dtype=torch.float64))
    leaf_rates = {r: torch.exp(log_s[:, i]) for i, r in enumerate(leaves)}
    rates = acceptance(tree, ps)
    return Pilot(
        tree,
        cost,
        rates,
        leaf_rates,
        draws,
        total_draws,
        calls,
        counts.shape[0],
        counts=counts,
    )


def _grow_for_collisions(
    counts: torch.Tensor, request: Request, have: int, cap: int, allowance: float | None
) -> int | None:
    """Double the pilot while a problem has fewer than MIN_PILOT_PAIRS colliding pairs, unless
    the collision floor already puts exact beyond ``allowance`` or the cap is reached; None:
    stop."""
    if have >= cap or request.s < 2.0:
        return None
    if float(colliding_pairs(counts).min()) >= MIN_PILOT_PAIRS:
        return None
    floor = float(collision_floor(counts, request.s).sum()) * request.num_outputs
    if allowance is not None and floor > allowance:
        return None
    return min(cap, 2 * have)


def next_size(
    counts: torch.Tensor,
    request: Request,
    cap: int,
    ref_cost: float | None,
    allowance: float | None,
    planned: Planned | None = None,
) -> int | None:
    """The pilot size per problem to grow to after the draws with per-draw counts (B, M), or
    None to stop: PILOT_SHARE of the planned draws (:func:`next_pilot_size`), else doubling for
    collisions (:func:`_grow_for_collisions`). ``planned``: :func:`planned_tree` of these
    counts, when the caller has it."""
    b, have = counts.shape
    cost = (planned if planned is not None else planned_tree(counts, request)).cost
    total = float(cost.sum()) * request.num_outputs
    grow = next_pilot_size(have, cap, min(total, ref_cost or math.inf), b)
    if grow is None:
        grow = _grow_for_collisions(counts, request, have, cap, allowance)
    return grow


def prefetch_size(
    counts: torch.Tensor,
    request: Request,
    cap: int,
    ref_cost: float | None,
    allowance: float | None,
) -> int:
    """Where the pilot would end if no key ever repeated (the sizes :func:`next_size` gives for
    all-distinct counts), for a pilot (per-draw counts (B, M)) without a single colliding pair;
    M otherwise. Drawing up to it in one request (:meth:`~.drawing.DrawSource.prefetch`) costs
    a continuous model one call instead of one per growth step, and changes nothing else: each
    step still decides on its own prefix, and the draws it does not reach stay fresh, served to
    the run's next calls."""
    b, have = counts.shape
    if float(colliding_pairs(counts).max()) > 0.0:
        return have
    size: int | None = have
    end = have
    while size is not None:
        end = size
        size = next_size(
            torch.ones((b, end), dtype=counts.dtype), request, cap, ref_cost, allowance
        )
    return end
