"""Running per-problem plans: method="auto" (and exact's planning pilot) with one generator per
problem, so that problem b's result depends on its own stream alone (see :mod:`.rows`).

1. Each problem plans as a single-problem call would, its draws shared with the others
   (:mod:`.row_plans`).
2. The problems with the same plan (the same tree; the same N and rule) run as one group: one
   vectorised call of the exact or batch method on a view of their rows
   (:meth:`~.drawing.DrawSource.rows`), each row's lanes, budget, coins and Gumbel noise its
   own (:mod:`.rows`).
3. method="auto": a batch attempt whose estimate misses LADDER_MARGIN x the tolerance is
   re-planned from its own pools (:func:`~.decide.refine`), problem by problem, and those
   problems run again, grouped by their new plans; a re-planned run that still misses the
   tolerance is re-planned again, AUTO_REPLANS times at most, as for one problem.
4. The groups' results are merged into one :class:`TemperatureResult` in problem order
   (:func:`merge_results`).

Batch accuracy records are computed problem by problem here (:func:`_row_accuracy`), for auto's
groups and for method="batch" (:func:`run_batch_rows`): the estimate's simulation draws from one
seeded stream per call, so an estimate made over a group would depend on the group, and auto's
re-plan reads it.

Budgets are per problem: ``max_draws`` bounds each problem's own draws; without it auto allows
each problem AUTO_BUDGET_FACTOR x its batch draws (:func:`~.decide.auto_budget`), and
an exact run it committed to stops beyond RUNAWAY_FACTOR x that problem's estimate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from .accuracy import Accuracy
from .api import (
    RUNAWAY_FACTOR,
    RUNAWAY_SLACK,
    _plain_accuracy,
    _unknown_cost,
    conclude,
    execute_exact,
    run_batch,
    run_committed_exact,
)
from .decide import Plan, auto_budget, decide_without_pilot, refine_pools
from .diagnostics import Diagnostics, diagnostics_messages
from .drawing import DrawSource
from .pilot import Pilot
from .plan import format_tree
from .request import Request
from .result import TemperatureResult
from .row_plans import no_pilot, row_decisions, row_trees
from .samples import as_samples, cat_rows
from .tolerance import AUTO_REPLANS, LADDER_MARGIN, batch_accuracy


@dataclass
class RowPart:
    """The problems ``rows`` (LongTensor, sorted) that ran one plan, their result, and per row
    what reaching the tolerance would cost, in words (for the warning; "" where nothing to
    say)."""

    rows: torch.Tensor
    result: TemperatureResult
    costs: list[str]


def run_auto_rows(source: DrawSource, request: Request) -> TemperatureResult:
    """method="auto" with one generator per problem (see the module docstring)."""
    assert source.row_draws is not None
    b = len(source.row_draws)
    early = decide_without_pilot(request, 1, Pilot.none(request, source))
    plans = [early] * b if early is not None else row_decisions(source, request)
    start = source.row_draws.clone()  # each problem's draws before its final run
    parts = _replanned(source, request, run_groups(source, request, plans, auto=True), start)
    pilots = int(start.sum())  # pilots and replaced attempts: only planned
    return _conclude(merge_results(source, request, parts, pilots), request, parts)


def _replanned(
    source: DrawSource, request: Request, parts: list[RowPart], start: torch.Tensor
) -> list[RowPart]:
    """Auto's re-plans, problem by problem, as for one problem (:func:`~.api._auto_batch`):
    first of the attempts that missed LADDER_MARGIN x the tolerance, then, AUTO_REPLANS times
    in all at most, of re-planned batch runs that still miss the tolerance itself, each from
    its own latest pools. ``start`` (B,): each problem's draws before its first attempt,
    updated in place to those before its final run."""
    done: list[RowPart] = []
    current = parts
    for replans in range(AUTO_REPLANS + 1):
        margin = LADDER_MARGIN if replans == 0 else 1.0
        last = replans == AUTO_REPLANS  # only say what reaching the tolerance would cost
        kept, current = _replan(source, request, current, start, margin, last)
        done += kept
        if not current:
            break
    return done + current


def run_exact_rows_planned(source: DrawSource, request: Request) -> TemperatureResult:
    """method="exact", plan="auto" at 1/T > 2, one generator per problem: each problem's tree
    from its own pilot, the problems with the same tree run together."""
    request.check_least_cost(source.draws, source.calls, 1)
    parts = run_groups(source, request, row_trees(source, request), auto=False)
    pilots = sum(p.result.pilot_draws for p in parts)
    return _conclude(merge_results(source, request, parts, pilots), request, parts)


def _plan_key(plan: Plan) -> tuple[Any, ...]:
    """Problems with equal keys run as one group."""
    if plan.method == "exact":
        assert plan.tree is not None
        return ("exact", format_tree(plan.tree), plan.pilot.cost is None)
    size = None
    if plan.reuse_pilot and plan.pilot.keys is not None:
        size = plan.pilot.keys.shape[1]
    return ("batch", plan.num_samples, plan.estimator, plan.reuse_pilot, size)


def run_groups(
    source: DrawSource, request: Request, plans: Sequence[Plan | None], *, auto: bool
) -> list[RowPart]:
    """Run each problem's plan (None: nothing to run for it), problems with equal plans
    (:func:`_plan_key`) as one group on a view of their rows."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for b, plan in enumerate(plans):
        if plan is not None:
            groups.setdefault(_plan_key(plan), []).append(b)
    parts = []
    for members in groups.values():
        rows = torch.tensor(members, dtype=torch.long)
        group = [plans[b] for b in members]
        view = source.rows(rows)
        try:
            result = _run_group(view, request, [p for p in group if p is not None], auto)
        finally:
            source.absorb(view, rows)
        parts.append(RowPart(rows, result, [""] * len(members)))
    return parts


def _run_group(
    view: DrawSource, request: Request, plans: list[Plan], auto: bool
) -> TemperatureResult:
    plan = _group_plan(plans)
    if plan.method == "exact":
        return _exact(view, request, plan, [p.expected_draws for p in plans], auto)
    return run_batch_rows(view, request, plan)


def _exact(
    view: DrawSource,
    request: Request,
    plan: Plan,
    expected: list[float | None],
    auto: bool,
) -> TemperatureResult:
    """The exact plan of a group within each row's budget (auto without max_draws: at most
    RUNAWAY_FACTOR x the row's own estimate beyond what it spent)."""
    assert view.row_draws is not None
    budget = request.row_budget(view.row_draws)
    if auto and request.max_draws is None:
        runaway = torch.tensor(
            [
                math.ceil(RUNAWAY_FACTOR * e) + RUNAWAY_SLACK if e is not None else 2**62
                for e in expected
            ],
            dtype=torch.long,
        )
        budget = torch.minimum(budget, view.row_draws + runaway)
    if not auto:
        return execute_exact(view, request, plan, budget)
    return run_committed_exact(view, request, plan, budget)


def _group_plan(plans: list[Plan]) -> Plan:
    """One Plan for a group of problems with equal plans: their pilots stacked, their
    estimates added."""
    first = plans[0]
    if len(plans) == 1:
        return first
    known = [p.expected_draws for p in plans if p.expected_draws is not None]
    expected = sum(known) if len(known) == len(plans) else None
    reason = first.reason
    if reason is not None and any(p.reason != reason for p in plans):
        reason += f" (for the first of {len(plans)} problems, each planned from its own pilot)"
    pilot = stack_pilots([p.pilot for p in plans])
    return dataclasses.replace(first, pilot=pilot, expected_draws=expected, reason=reason)


def stack_pilots(pilots: list[Pilot]) -> Pilot:
    """Single-problem pilots as one pilot of len(pilots) problems: the first one's tree (the
    group's, for exact groups; a batch group's pilots may plan different trees, which it does
    not run), their costs and leaf rates stacked (the leaf rates where every pilot has them),
    keys, samples and counts where their sizes agree. The node acceptance rates, which nothing
    reads after planning, are not kept."""
    first = pilots[0]

    def cat(values: list[torch.Tensor | None]) -> torch.Tensor | None:
        if any(v is None for v in values):
            return None
        shapes = {tuple(v.shape[1:]) for v in values if v is not None}
        return torch.cat([v for v in values if v is not None]) if len(shapes) == 1 else None

    leaf_rates = {}
    for r in first.leaf_rates:
        stacked = cat([p.leaf_rates.get(r) for p in pilots])
        if stacked is not None:
            leaf_rates[r] = stacked
    samples = None
    if all(p.samples is not None for p in pilots):
        sizes = {p.samples.size for p in pilots if p.samples is not None}
        if len(sizes) == 1:
            samples = cat_rows([p.samples for p in pilots if p.samples is not None])
    return Pilot(
        first.tree,
        cat([p.cost for p in pilots]),
        {},
        leaf_rates,
        draws=sum(p.draws for p in pilots),
        total_draws=sum(p.total_draws for p in pilots),
        total_calls=max(p.total_calls for p in pilots),
        num_problems=len(pilots),
        counts=cat([p.counts for p in pilots]),
        keys=cat([p.keys for p in pilots]),
        samples=samples,
    )


def run_batch_rows(
    source: DrawSource, request: Request, plan: Plan | None = None
) -> TemperatureResult:
    """The batch method (``plan``'s N and rule, else the options') with one generator per
    problem: method="batch", and auto's batch groups. The pools and picks come from each
    problem's own stream (:class:`~.drawing.DrawSource` per row), and so does the accuracy
    record, each problem's estimate from its own pools alone, so that a problem's whole
    result is the same alone as inside any batch."""
    estimate = request.options.estimate_accuracy
    unestimated = dataclasses.replace(  # estimated below, problem by problem
        request, options=dataclasses.replace(request.options, estimate_accuracy=False)
    )
    result = run_batch(source, unestimated, source.generator, plan)
    if estimate:
        result.accuracy = _row_accuracy(result, request)
    return result


def _row_accuracy(result: TemperatureResult, request: Request) -> Accuracy:
    """A batch group's accuracy record, each problem's estimate from its own pools alone."""
    n, estimator = result.extra["num_samples"], result.extra["estimator"]
    if request.temperature == 1.0 or estimator == "plugin":
        return _plain_accuracy(request)
    keys = result.extra["pool_keys"]
    level = result.cascade_level
    assert level is not None
    rows = [
        batch_accuracy(
            keys[i : i + 1],
            n,
            request.s,
            request.options.tolerance,
            level[i : i + 1],
            batched=True,
            estimator=estimator,
        )
        for i in range(keys.shape[0])
    ]
    return merge_accuracies(rows, request.options.tolerance)


def merge_accuracies(
    records: list[Accuracy], tolerance: float, sizes: list[int] | None = None
) -> Accuracy:
    """One record for several problems: the worst estimate and bound, per-problem estimates
    side by side (NaN where unknown; a record without them counts its estimate for each of
    its ``sizes`` problems, one by default)."""
    if len(records) == 1:
        return records[0]
    per = torch.cat(
        [
            r.per_problem.double().cpu()
            if r.per_problem is not None
            else torch.full((size,), r.estimate, dtype=torch.float64)
            for r, size in zip(records, sizes or [1] * len(records), strict=True)
        ]
    )
    known = all(r.known for r in records)
    hows = sorted({r.how for r in records})
    how = hows[0] if len(hows) == 1 else "per problem: " + " | ".join(hows)
    effective = [r.effective_temperature for r in records if r.effective_temperature is not None]
    return Accuracy(
        estimate=float(per.max()) if known else math.nan,
        upper=max(r.upper for r in records),
        confidence=min(r.confidence for r in records),
        how=how,
        tolerance=tolerance,
        per_problem=per,
        effective_temperature=max(effective) if effective else None,
        estimated=all(r.estimated for r in records),
    )


def _replan(
    source: DrawSource,
    request: Request,
    parts: list[RowPart],
    start: torch.Tensor,
    margin: float,
    last: bool,
) -> tuple[list[RowPart], list[RowPart]]:
    """One re-plan of the batch problems of ``parts`` whose estimate misses ``margin`` x the
    tolerance (:func:`~.decide.refine` on the problem's own pools, its cost text kept for the
    warning); unless ``last``, those with a new plan run again, grouped. Returns the parts
    without the replaced problems and the new runs (whose pooled keys are kept for the next
    re-plan); ``start`` is set to the replaced problems' draws before their new run."""
    assert source.row_draws is not None
    b = len(source.row_draws)
    better: list[Plan | None] = [None] * b
    replaced: list[int] = []
    for part in parts:
        res = part.result
        if res.method != "batch":
            continue
        keys = res.extra.pop("pool_keys")
        acc = res.accuracy
        assert acc is not None
        per = acc.per_problem
        if per is None:
            per = torch.full((len(part.rows),), acc.estimate, dtype=torch.float64)
        for i, row in enumerate(part.rows.tolist()):
            own = keys[i : i + 1]
            tv = float(per[i])
            if math.isnan(tv):
                part.costs[i] = _unknown_cost(own, request)
                continue
            if tv <= margin * request.options.tolerance:
                continue
            remaining = auto_budget(request, 1) - int(source.row_draws[row])
            none = no_pilot(request, source, row)
            found = refine_pools(own, request, none, remaining, res.extra["num_samples"])
            part.costs[i] = found.cost
            if found.plan is not None and not last:
                better[row] = found.plan
                replaced.append(row)
    if not replaced:
        return parts, []
    for row in replaced:
        start[row] = source.row_draws[row]
    new = run_groups(source, request, better, auto=True)
    for p in new:
        p.costs = [""] * len(p.rows)
    kept = [_without(p, set(replaced)) for p in parts]
    return [p for p in kept if p is not None], new


def _without(part: RowPart, rows: set[int]) -> RowPart | None:
    """``part`` without the problems ``rows`` (None when nothing is left)."""
    keep = [i for i, r in enumerate(part.rows.tolist()) if r not in rows]
    if len(keep) == len(part.rows):
        return part
    if not keep:
        return None
    index = torch.tensor(keep, dtype=torch.long)
    res = part.result
    cut = dataclasses.replace(
        res,
        samples=as_samples(res.samples).select_rows(index).data,
        keys=res.keys[index.to(res.keys.device)],
        cascade_level=None if res.cascade_level is None else res.cascade_level[index],
        cascade_depth=None if res.cascade_depth is None else res.cascade_depth[index],
        diagnostics=_select_diagnostics(res.diagnostics, index),
        accuracy=_select_accuracy(res.accuracy, index),
    )
    return RowPart(part.rows[index], cut, [part.costs[i] for i in keep])


def _select_diagnostics(d: Diagnostics | None, index: torch.Tensor) -> Diagnostics | None:
    if d is None or not d.batched:
        return d
    return dataclasses.replace(
        d,
        distinct_keys=d.distinct_keys[index],
        singleton_share=d.singleton_share[index],
        cascade_level=None if d.cascade_level is None else d.cascade_level[index],
    )


def _select_accuracy(acc: Accuracy | None, index: torch.Tensor) -> Accuracy | None:
    if acc is None or acc.per_problem is None:
        return acc
    per = acc.per_problem[index]
    known = not bool(per.isnan().any())
    return dataclasses.replace(
        acc, per_problem=per, estimate=float(per.max()) if known else math.nan
    )


def merge_results(
    source: DrawSource, request: Request, parts: list[RowPart], pilot_draws: int
) -> TemperatureResult:
    """The groups' results as one batched result in problem order: ``method`` the common one,
    else "mixed" (``extra["methods"]`` says each problem's); draws and calls of the whole run;
    rounds summed; the cascade levels of exact problems are 1/T (no step down)."""
    parts = sorted(parts, key=lambda p: int(p.rows[0]))
    order = torch.cat([p.rows for p in parts])
    inverse = order.argsort()
    results = [p.result for p in parts]
    methods = [r.method for r in results]
    per_row = [m for p, r in zip(parts, results, strict=True) for m in [r.method] * len(p.rows)]
    samples = cat_rows([as_samples(r.samples) for r in results]).select_rows(inverse)
    keys = torch.cat([r.keys for r in results])[inverse.to(results[0].keys.device)]
    exact = [r for r in results if r.method == "exact"]
    trees = sorted({r.plan for r in exact if r.plan is not None})
    first = results[0]
    merged = dataclasses.replace(
        first,
        samples=samples.data,
        keys=keys,
        method=methods[0] if len(set(methods)) == 1 else "mixed",
        draws=source.draws,
        model_calls=source.calls,
        rounds=_sum([r.rounds for r in exact]),
        accepted_rounds=_sum([r.accepted_rounds for r in exact]),
        rejected_rounds=_sum([r.rejected_rounds for r in exact]),
        abandoned_rounds=_sum([r.abandoned_rounds for r in exact]),
        max_lanes_used=max((r.max_lanes_used or 0 for r in exact), default=None),
        cascade_level=_levels(parts, request, "cascade_level", inverse),
        cascade_depth=_levels(parts, request, "cascade_depth", inverse),
        reason=_reason(parts),
        plan=", ".join(trees) if trees else None,
        pilot_draws=pilot_draws,
        expected_draws=_sum([r.expected_draws for r in results]),
        diagnostics=_merge_diagnostics([r.diagnostics for r in results], inverse),
        accuracy=_merge_accuracy(parts, request, inverse),
        extra={"methods": [per_row[i] for i in inverse.tolist()]},
    )
    if len(parts) > 1:
        merged.extra["row_groups"] = [(p.rows.tolist(), p.result.summary()) for p in parts]
    return merged


_Number = TypeVar("_Number", int, float)


def _sum(values: Sequence[_Number | None]) -> _Number | None:
    known = [v for v in values if v is not None]
    return sum(known[1:], known[0]) if known else None


def _levels(
    parts: list[RowPart], request: Request, name: str, inverse: torch.Tensor
) -> torch.Tensor | None:
    """The batch parts' cascade levels (or depths), exact rows filled with 1/T (depth 0)."""
    got = [getattr(p.result, name) for p in parts]
    if all(g is None for g in got):
        return None
    n_out = request.num_outputs
    fill = request.s if name == "cascade_level" else 0
    full = []
    for p, g in zip(parts, got, strict=True):
        if g is None:
            dtype = torch.float64 if name == "cascade_level" else torch.long
            g = torch.full((len(p.rows), n_out), fill, dtype=dtype)
        full.append(g.cpu())
    return torch.cat(full)[inverse]


def _reason(parts: list[RowPart]) -> str | None:
    if len(parts) == 1:
        return parts[0].result.reason
    return "; ".join(
        f"problems {p.rows.tolist()}: {p.result.method}: {p.result.reason}" for p in parts
    )


def _merge_diagnostics(
    found: list[Diagnostics | None], inverse: torch.Tensor
) -> Diagnostics | None:
    """The parts' diagnostics side by side where they saw the same kind and number of samples;
    None otherwise (their messages are still raised, see :func:`_conclude`)."""
    if any(d is None for d in found):
        return None
    ds = [d for d in found if d is not None]
    if len(ds) == 1:
        return ds[0]
    if len({(d.seen, d.samples, d.distinct_keys.dim()) for d in ds}) != 1:
        return None
    if any(d.distinct_keys.numel() == 0 for d in ds):
        return None
    levels = [d.cascade_level for d in ds]
    return dataclasses.replace(
        ds[0],
        distinct_keys=torch.cat([d.distinct_keys for d in ds])[inverse],
        singleton_share=torch.cat([d.singleton_share for d in ds])[inverse],
        cascade_level=None
        if any(lv is None for lv in levels)
        else torch.cat([lv for lv in levels if lv is not None])[inverse],
    )


def _merge_accuracy(parts: list[RowPart], request: Request, inverse: torch.Tensor) -> Accuracy:
    tol = request.options.tolerance
    records = [p.result.accuracy or Accuracy.exact(tol) for p in parts]
    if len(records) == 1:
        return records[0]
    merged = merge_accuracies(records, tol, [len(p.rows) for p in parts])
    assert merged.per_problem is not None
    return dataclasses.replace(merged, per_problem=merged.per_problem[inverse])


def _conclude(
    result: TemperatureResult, request: Request, parts: list[RowPart]
) -> TemperatureResult:
    """:func:`~.api.conclude` for a merged result: every part's diagnostics findings, one
    warning at most, the first problem's cost words."""
    found: list[str] = []
    for p in parts:
        d = p.result.diagnostics
        if d is None:
            continue
        for message in diagnostics_messages(
            d, method=p.result.method, temperature=request.temperature, advice=request.advice
        ):
            if message not in found:
                found.append(message)
    cost = next((c for p in parts for c in p.costs if c), "")
    return conclude(result, request, cost, found)
