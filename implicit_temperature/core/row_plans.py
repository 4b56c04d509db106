"""Planning with one generator per problem: each problem's pilot and decision from its own
stream and counts, the draws of all problems made together.

Every function here treats problem b as a single-problem call would (``num_problems`` 1, its
own draws ``source.row_draws[b]`` as what it has spent): pilot sizes from
:func:`~.pilot.next_size` on its own counts, the decision from :func:`~.decide.decide` on its
own pilot, the batch plan's pilot growth from its own plan. Only the draw calls are shared:
each step draws every problem's own count in one call per distinct count
(:meth:`~.drawing.DrawSource.ragged`), so problem b's stream moves by its own requests only.
The loop over problems is over B (at most a server's batch), never over samples.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from .decide import Plan, batch_plan_growth, decide, pilot_allowance
from .drawing import DrawSource
from .errors import DrawBudgetExceeded
from .grouping import group_counts
from .pilot import (
    PILOT_MIN,
    Pilot,
    Planned,
    grown_pilot,
    next_size,
    pilot_cap,
    plan_from_counts,
    planned_rows,
    reusable,
)
from .request import Request
from .samples import Samples, cat_samples


@dataclass
class _Growing:
    """One problem's pilot while it grows: draws spent before it (``start``), its cap, the
    draws it has and wants, its keys (1, m, d) per step, and its samples while reusable."""

    start: int
    cap: int
    target: int
    have: int = 0
    keys: list[torch.Tensor] = field(default_factory=list)
    kept: list[Samples] | None = field(default_factory=list)
    counts: torch.Tensor | None = None
    planned: Planned | None = None
    new: Samples | None = None  # the last step's draws (1, m, ...)


def _row(samples: Samples, keys: torch.Tensor, b: int, m: int) -> tuple[Samples, torch.Tensor]:
    """Problem b's first m draws of a ragged call: Samples (1, m, ...) and keys (1, m, d)."""
    one = samples.select_rows(torch.tensor([b]))
    return one.gather(torch.arange(m).unsqueeze(0)), keys[b : b + 1, :m]


def no_pilot(request: Request, source: DrawSource, b: int) -> Pilot:
    """Problem b's pilot without draws (:meth:`~.pilot.Pilot.none` for one problem, its own
    draws so far)."""
    assert source.row_draws is not None
    none = Pilot.none(request, source)
    return dataclasses.replace(
        none, num_problems=1, total_draws=int(source.row_draws[b]), total_calls=source.calls
    )


def row_pilots(
    source: DrawSource,
    request: Request,
    ref_cost: float | None = None,
    allowance: float | None = None,
) -> list[Pilot]:
    """Each problem's pilot (:func:`~.pilot.run_pilot` for one problem, with ``ref_cost`` and
    ``allowance`` per problem), grown together: one :meth:`~.drawing.DrawSource.ragged` call
    per growth step, and the problems with equal pilot sizes counted and planned together
    (:func:`_plan_step`; row-stable figures, so each is what it would be alone)."""
    assert source.row_draws is not None
    rows = len(source.row_draws)
    grow: list[_Growing] = []
    for b in range(rows):
        start = int(source.row_draws[b])
        cap = pilot_cap(request, start, 1)
        grow.append(_Growing(start, cap, min(PILOT_MIN, cap) if cap >= 2 else 0))
    while True:
        want = torch.tensor([max(0, g.target - g.have) for g in grow], dtype=torch.long)
        if not bool((want > 0).any()):
            break
        samples, keys = source.ragged(want)
        drew: dict[int, list[int]] = {}  # pilot size -> the problems that drew
        for b in want.nonzero().flatten().tolist():
            g, m = grow[b], int(want[b])
            x, k = _row(samples, keys, b, m)
            g.keys.append(k)
            g.new = x
            g.have = g.target
            if request.max_draws is not None and int(source.row_draws[b]) > request.max_draws:
                raise DrawBudgetExceeded(
                    f"max_draws={request.max_draws} is below a pilot of {g.have} draws for "
                    f"problem {b} (with one generator per problem, max_draws bounds each "
                    "problem's own draws); raise max_draws",
                    {"draws": source.draws, "model_calls": source.calls},
                )
            drew.setdefault(g.have, []).append(b)
        for members in drew.values():
            _plan_step([grow[b] for b in members], request, ref_cost, allowance)
    return [_finished(request, source, b, g) for b, g in enumerate(grow)]


def _plan_step(
    grow: list[_Growing], request: Request, ref_cost: float | None, allowance: float | None
) -> None:
    """After a growth step, for problems whose pilots have the same size: their counts and
    plans (computed together, each row's as it would be alone: counts are integers, and the
    power sums are row-stable), whether their draws stay reusable, and their next sizes."""
    stacked = torch.cat([torch.cat(g.keys, 1) for g in grow])
    counts = group_counts(stacked)[0].cpu()
    for i, (g, planned) in enumerate(zip(grow, planned_rows(counts, request), strict=True)):
        g.counts, g.planned = counts[i : i + 1], planned
        assert g.new is not None
        g.kept = None if g.kept is None or not reusable(g.counts) else [*g.kept, g.new]
        size = next_size(g.counts, request, g.cap, ref_cost, allowance, g.planned)
        if size is not None:
            g.target = size


def _finished(request: Request, source: DrawSource, b: int, g: _Growing) -> Pilot:
    """Problem b's Pilot once its pilot stopped growing."""
    if g.counts is None:
        return no_pilot(request, source, b)
    assert source.row_draws is not None
    spent = int(source.row_draws[b])
    pilot = plan_from_counts(
        g.counts,
        request,
        draws=spent - g.start,
        total_draws=spent,
        calls=source.calls,
        planned=g.planned,
    )
    samples = None if g.kept is None else cat_samples(g.kept)
    return dataclasses.replace(pilot, keys=torch.cat(g.keys, 1), samples=samples)


def row_decisions(source: DrawSource, request: Request) -> list[Plan]:
    """Each problem's plan, as :func:`~.api.run_auto` makes it for one problem: its pilot, the
    decision, and a batch plan's pilot grown while the plan asks (all problems' growth drawn
    together)."""
    assert source.row_draws is not None
    batch_cost, allowance = pilot_allowance(request, 1)
    pilots = row_pilots(source, request, ref_cost=batch_cost, allowance=allowance)
    plans = [decide(p, request) for p in pilots]
    settled = [False] * len(plans)
    while True:
        want = torch.zeros(len(plans), dtype=torch.long)
        for b, (pilot, plan) in enumerate(zip(pilots, plans, strict=True)):
            if settled[b]:
                continue
            size = batch_plan_growth(pilot, plan, request, int(source.row_draws[b]))
            if size is None or pilot.keys is None:
                settled[b] = True
            else:
                want[b] = size - pilot.keys.shape[1]
        if not bool((want > 0).any()):
            return plans
        samples, keys = source.ragged(want)
        for b in want.nonzero().flatten().tolist():
            m = int(want[b])
            x, k = _row(samples, keys, b, m)
            spent = int(source.row_draws[b])
            pilots[b] = grown_pilot(
                request, pilots[b], x, k, draws=m, total_draws=spent, calls=source.calls
            )
            plans[b] = decide(pilots[b], request)


def row_trees(source: DrawSource, request: Request) -> list[Plan]:
    """method="exact" with plan="auto" planned by a pilot (1/T > 2): each problem's tree from
    its own pilot (:func:`row_pilots`), as exact plans."""
    return [
        Plan("exact", None, p, tree=p.tree, expected_draws=None)
        for p in row_pilots(source, request)
    ]
