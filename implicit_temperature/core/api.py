"""``temperature_sample``: the one entry point that runs the exact, batch or auto method.

Each method is a plan executed on a :class:`~.drawing.DrawSource`: ``method="exact"`` and
``"batch"`` build their plan directly; ``"auto"`` draws a pilot and lets
:func:`~.decide.decide` choose, then executes that choice (see :mod:`.decide`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, overload

import torch

from .accuracy import Accuracy
from .batch import batch_selection
from .decide import (
    AUTO_BUDGET_FACTOR,
    AUTO_EXACT_SHARE,
    Plan,
    auto_budget,
    batch_plan_growth,
    decide,
    decide_without_pilot,
    pilot_allowance,
    refine_pools,
)
from .diagnostics import diagnostics_messages, make_diagnostics, pool_statistics
from .drawing import DrawSource, warn_if_seed_ignored
from .errors import DrawBudgetExceeded, InvalidArgumentError, TemperatureWarning
from .options import DEFAULT_MAX_DRAWS_PER_OUTPUT, METHODS, SampleOptions, keyword_signature
from .pilot import (
    PILOT_BUDGET_SHARE,
    PILOT_MIN,
    PILOT_SHARE,
    Pilot,
    collision_floor,
    extend_pilot,
    run_pilot,
)
from .plan import format_tree
from .preview import Estimate, estimate
from .progress import Progress
from .request import MAX_FEASIBLE_DRAWS, KeyName, Request
from .result import TemperatureResult
from .rows import RowGenerators, is_row_generators
from .samples import Samples, cat_samples
from .tolerance import (
    ACCURACY_MAX_DRAWS,
    AUTO_REPLANS,
    LADDER_MARGIN,
    batch_accuracy,
    check_accuracy,
    observed_counts,
    warn,
)
from .tree import run_tree
from .validation import check_temperature, make_generator

#: The batch method draws at most this many base samples per ``draw`` call: the outputs are cut
#: into chunks of max(1, BATCH_CHUNK_DRAWS // N), so that its peak memory is bounded by the chunk
#: (~70 bytes per draw for scalar keys: < 1 GB) plus the chosen outputs, not by N x num_outputs.
#: Runs within one chunk draw and select exactly as one call would (as before chunking); longer
#: runs stay deterministic per seed, with a different random stream. 1e7 keeps the single call
#: of N = 200 x 50k outputs that the tests rely on.
BATCH_CHUNK_DRAWS = 10_000_000
#: The exact method refuses to start when its planned draws exceed this many times the budget.
FAR_BEYOND_BUDGET = 10.0
#: method="auto" without max_draws stops an exact run it committed to beyond this many times its
#: plan's estimate (plus RUNAWAY_SLACK draws per problem): never a silent runaway.
RUNAWAY_FACTOR = 5.0
RUNAWAY_SLACK = 1000

__all__ = [
    "AUTO_BUDGET_FACTOR",
    "AUTO_EXACT_SHARE",
    "FAR_BEYOND_BUDGET",
    "MAX_FEASIBLE_DRAWS",
    "METHODS",
    "PILOT_BUDGET_SHARE",
    "PILOT_MIN",
    "PILOT_SHARE",
    "temperature_sample",
]

logger = logging.getLogger(__name__)  # under "implicit_temperature"


@overload
def temperature_sample(
    draw: Callable[..., Any],
    temperature: float,
    *,
    dry_run: Literal[True],
    key: Callable[[Any], Any] | None = ...,
    batched: bool = ...,
    key_name: KeyName = ...,
    advice: str | None = ...,
    options: SampleOptions | None = ...,
    **sample_options: Any,
) -> Estimate: ...


@overload
def temperature_sample(
    draw: Callable[..., Any],
    temperature: float,
    *,
    key: Callable[[Any], Any] | None = ...,
    batched: bool = ...,
    key_name: KeyName = ...,
    advice: str | None = ...,
    options: SampleOptions | None = ...,
    **sample_options: Any,
) -> TemperatureResult: ...


def temperature_sample(
    draw: Callable[..., Any],
    temperature: float,
    *,
    key: Callable[[Any], Any] | None = None,
    batched: bool = False,
    key_name: KeyName = None,
    advice: str | None = None,
    options: SampleOptions | None = None,
    **sample_options: Any,
) -> TemperatureResult | Estimate:
    """Sample from P_T(x) = P(x)^(1/T) / Z_T using only draws x ~ P.

    Args:
        draw: ``draw(m)`` returns m i.i.d. samples (tensor, ndarray or list, leading dim m); it is
            called as ``draw(m, generator=g)`` when it accepts a ``generator`` keyword. With
            ``batched=True`` it returns (B, m, ...) for B independent problems (e.g. B prompts).
        temperature: T > 0. ``method="exact"`` needs T <= 1.
        key: ``key(samples)`` -> integer tensor (m,) or (m, d) (batched: (B, m) or (B, m, d));
            equal keys = same outcome. None compares sample rows exactly (bitwise for floats;
            hashable Python objects for lists).
        method: "auto" (default: a small pilot batch plans the exact method and estimates its
            cost; exact when that fits the budget, else batch; the choice is made before exact
            runs and then kept: an exact run that overruns raises, it never switches), "exact"
            (exact P_T, T <= 1, random cost) or "batch" (approximate, any T > 0, exactly
            num_samples draws per output).
        plan: exact method: "auto" (default: the collision tree a pilot batch plans, flat rounds
            for T >= 1/2 without a pilot), "flat" (one flat round per output attempt) or a tree
            such as "(2+2)+(3+3)" or "2*(1.5+1.5)" whose leaves add up to 1/T (notation in
            :mod:`implicit_temperature.core.plan`).
        num_samples: N, the batch size of the batch method, and the largest pilot of "auto"; or
            "auto": method="batch" then chooses N (and, with estimator="auto", the weights) from
            a pilot to meet ``tolerance``, exact excluded (pilot and budget use N = 200).
        num_outputs: outputs per problem. They are independent; the batch method draws a fresh
            batch of N for each output, all in one ``draw`` call.
        max_draws: exact/auto: budget of base draws, pilot included; the exact method raises
            :class:`DrawBudgetExceeded` (with the statistics so far) instead of exceeding it, and
            refuses at once when its plan needs far more (``FAR_BEYOND_BUDGET``) or when even its
            least possible cost (1/T draws per output) exceeds it. None means
            ``DEFAULT_MAX_DRAWS_PER_OUTPUT`` (1e6) per output and problem.
        generator: torch.Generator or int seed; the same seed gives the same result. With
            ``batched=True``, a list of B of them, one per problem, with any method
            (``max_draws`` is then each problem's own budget; auto and the exact method's
            pilot plan each problem from its own pilot, and ``res.method`` is "mixed" where
            problems chose differently): problem b's result then depends on ``generator[b]``
            alone, never on what it is batched with, and ``draw`` receives the list
            (``draw(m, generator=[g_1, ...])``) and must draw row b from ``g_b`` (see
            :mod:`.rows`).
        batched: see ``draw``.
        share_pool: batch method: one pool of N for all outputs (fewer draws; outputs correlated).
        max_lanes: exact method: most rounds run side by side per problem (one draw each per step).
        estimator: batch method weights, "binomial", "jackknife" (the binomial rule with its
            1/N bias removed: on spread laws the same accuracy for several times fewer draws, see
            docs/algorithms.md), "plugin" ((c/N)^(1/T)) or "auto" (default: binomial at a given
            N; where N is chosen from a pilot, method="auto" or num_samples="auto", whichever of
            binomial and jackknife the pilot estimates cheaper at the tolerance).
        key_name: a name for ``key`` (e.g. the quantizer's) used in ``res.diagnostics`` and in
            the :class:`TemperatureWarning` raised when temperature could not act; or a callable
            returning it, asked once the draws are done (for keys chosen lazily).
        progress: show progress of the exact method (a tqdm bar of draws against the planned
            total when tqdm is installed, else log lines). Off by default.
        tolerance: the TV to P^(1/T) that ``method="auto"`` must reach (default
            ``DEFAULT_TOLERANCE`` = 0.05): auto runs the cheapest method it estimates meets it
            within the budget, and any result whose estimated TV exceeds it (or cannot be
            estimated) raises :class:`AccuracyWarning`, saying what reaching it would cost.
        on_inaccurate: "warn" (default) or "raise" (:class:`InaccurateResultError`, holding the
            best attempt) when the result misses the tolerance.
        dry_run: run only the pilot and return :func:`~.preview.estimate`'s
            :class:`~.preview.Estimate` (each method's planned draws and estimated TV, and
            what auto would do) instead of a result: the cost and accuracy before paying.
        advice: what the warnings should advise when temperature cannot act (adapters set it:
            "a coarser quantizer" means nothing where the key is the sample itself).
        options: a :class:`~.options.SampleOptions` holding the keywords above (method to
            on_inaccurate); keywords given as well override it.

    The sampling keywords (method, plan, num_samples, num_outputs, max_draws, generator,
    share_pool, max_lanes, estimator, progress, tolerance, on_inaccurate, dry_run) are the
    fields of :class:`~.options.SampleOptions`, which holds their defaults and checks them; an
    unknown keyword raises :class:`UnknownOptionError` naming the closest one.

    Returns:
        :class:`TemperatureResult`. Exactness: ``method="exact"`` returns samples whose outcomes
        (keys) are exactly P_T-distributed and mutually independent; the sample is the stage-1 draw
        of a leaf round, so within one key it keeps the model's own law. ``method="batch"`` is an
        approximation that improves with N (see docs/algorithms.md). ``res.plan`` is the
        tree used (None for batch), ``res.expected_draws`` its planned draws (pilot not included)
        when a pilot was drawn, ``res.pilot_draws`` the pilot's draws (counted in ``res.draws``).
        ``res.diagnostics`` says how many distinct keys the pools (batch) or the first draws
        (exact) had; a :class:`TemperatureWarning` is raised when almost every batch sample was
        distinct or one key covered every sample. ``res.accuracy`` (and ``res.estimated_tv``)
        say how far the outputs' law is estimated to be from P^(1/T): 0 for exact, estimated from
        the pools for batch (see :mod:`.accuracy`).

    Budget of ``method="auto"``: without ``max_draws`` it spends at most AUTO_BUDGET_FACTOR (10)
    times the batch method's draws (num_samples per output and problem), pilot and attempts
    included; an exact run it commits to is stopped (DrawBudgetExceeded) beyond RUNAWAY_FACTOR
    times its plan's estimate. A first batch attempt that misses the tolerance counts as a pilot:
    auto then re-plans from its pools (a larger N, or exact) when that fits what is left, and
    returns the new run (its draws are fresh: the choice depends on the attempt only).

    Very small T: 1/T is defined for every positive float (inf below ~5.6e-309). The batch
    method's T -> 0 limit is a uniform pick among the pool's most frequent outcomes; the exact
    method needs at least 1/T draws per output, so it refuses with :class:`DrawBudgetExceeded`
    when that exceeds ``max_draws``, and "auto" then uses batch.
    """
    t = check_temperature(temperature)
    opts = SampleOptions.from_kwargs(sample_options, base=options)
    if opts.dry_run:
        return estimate(
            draw,
            t,
            key=key,
            batched=batched,
            key_name=key_name,
            options=dataclasses.replace(opts, dry_run=False),
        )
    request = Request.make(t, opts, batched=batched, key_name=key_name, advice=advice)
    gen = _generator(opts, request)
    warn_if_seed_ignored(draw, opts.generator)
    source = DrawSource(draw, key, batched=batched, generator=gen)
    if opts.method == "batch" and not request.batch_only:
        if source.per_row:
            from .row_runs import run_batch_rows  # it runs on this module

            return conclude(run_batch_rows(source, request), request)
        return conclude(run_batch(source, request, gen), request)
    if source.per_row and (opts.method != "exact" or _planned_exact(request)):
        from .row_runs import run_auto_rows, run_exact_rows_planned  # they run on this module

        if opts.method == "exact":
            return run_exact_rows_planned(source, request)
        return run_auto_rows(source, request)
    if opts.method == "exact":
        return conclude(run_exact_method(source, request), request)
    return run_auto(source, request, source.single_generator())


def _planned_exact(request: Request) -> bool:
    """The exact method plans its tree from a pilot (plan="auto" above 1/T = 2)."""
    return request.fixed_tree is None and request.s > 2.0


def _generator(opts: SampleOptions, request: Request) -> torch.Generator | RowGenerators:
    """The run's generator: one stream, or one per problem (a list; see :mod:`.rows`)."""
    given = opts.generator
    if not is_row_generators(given):
        return make_generator(given)
    if not request.batched:
        raise InvalidArgumentError(
            "generator= is a list (one stream per problem), which needs batched=True (draw "
            f"returning (B, m, ...)), got batched={request.batched}: give one generator or seed"
        )
    return RowGenerators(given)


temperature_sample.__signature__ = keyword_signature(  # type: ignore[attr-defined]
    temperature_sample, exclude=("options",)
)


def finish(
    source: DrawSource,
    request: Request,
    samples: Samples,
    keys: torch.Tensor,
    method: str,
    extra: dict[str, Any] | None = None,
    **fields: Any,
) -> TemperatureResult:
    """The TemperatureResult of a run: keys squeezed / unbatched as the caller's draw was,
    diagnostics computed (checked by :func:`conclude`, once per call)."""
    batched = request.batched
    pool_stats = fields.pop("pool_stats", None)
    if source.keys.squeeze:
        keys = keys.squeeze(-1)
    if not batched:
        keys = keys[0]
        for name in ("cascade_level", "cascade_depth"):
            if fields.get(name) is not None:
                fields[name] = fields[name][0]
    diagnostics = make_diagnostics(
        pool_counts=None,
        pool_stats=pool_stats,
        seen_keys=None if pool_stats is not None else source.seen_keys(),
        cascade_level=fields.get("cascade_level"),
        key_name=_name_of_key(request.key_name),
        batched=batched,
    )
    fields.setdefault("accuracy", Accuracy.exact(request.options.tolerance))
    result = TemperatureResult(
        samples=samples.output(batched),
        keys=keys,
        method=method,
        temperature=request.temperature,
        draws=source.draws,
        model_calls=source.calls,
        requested_method=request.options.method,
        num_outputs=request.num_outputs,
        batched=batched,
        extra=dict(extra or {}),
        diagnostics=diagnostics,
        **fields,
    )
    logger.info("temperature_sample: %s", result.summary())
    return result


def conclude(
    result: TemperatureResult,
    request: Request,
    cost: str = "",
    found: list[str] | None = None,
) -> TemperatureResult:
    """The checks of a call's final result, one warning at most: an :class:`AccuracyWarning`
    (or :class:`InaccurateResultError`) when its estimated TV misses the tolerance, which also
    carries the diagnostics' findings; else the diagnostics' :class:`TemperatureWarning` when
    temperature could not act. ``found``: the findings, where the caller has them (a merged
    result, whose parts' diagnostics may not stack); else from ``result.diagnostics``. The
    batch method's pooled keys (``extra["pool_keys"]``, for auto's re-plans) are dropped here,
    so that no result returned to the caller holds them."""
    result.extra.pop("pool_keys", None)
    if found is None:
        found = []
        if result.diagnostics is not None:
            found = diagnostics_messages(
                result.diagnostics,
                method=result.method,
                temperature=request.temperature,
                advice=request.advice,
            )
    acc = result.accuracy
    if acc is not None and not acc.meets:
        check_accuracy(result, request.options.on_inaccurate, cost, request.advice, found)
    else:
        for message in found:
            warn(message, TemperatureWarning)
    return result


def _name_of_key(key_name: Any) -> str | None:
    name = key_name() if callable(key_name) else key_name
    return None if name is None else str(name)


def execute_exact(
    source: DrawSource, request: Request, plan: Plan, budget: int | torch.Tensor | None
) -> TemperatureResult:
    """Run the exact method with ``plan.tree`` within ``budget`` (the pilot's leaf rates size the
    leaves' first steps; nodes size their requests from the run's own counts)."""
    assert plan.tree is not None
    pilot, n_out = plan.pilot, request.num_outputs
    prog = Progress(
        request.options.progress, f"exact T={request.temperature:g} plan={format_tree(plan.tree)}"
    )
    expected = None if pilot.cost is None else float(pilot.cost.sum()) * n_out
    if expected is not None:
        prog.set_total(source.draws + expected)
    prog.update(source.draws)
    try:
        out, run = run_tree(
            source,
            plan.tree,
            n_out,
            max_draws=budget,
            max_lanes=request.options.max_lanes,
            leaf_rates=pilot.leaf_rates,
            on_draw=lambda: prog.update(source.draws),
        )
    finally:
        prog.close()
    st = out.stats
    extra = {
        "plan_draws_per_output": None if pilot.cost is None else float(pilot.cost.mean()),
        "pairs": run.pairs,
        "kept_pairs": run.kept,
    }
    return finish(
        source,
        request,
        out.samples,
        out.keys,
        "exact",
        extra=extra,
        rounds=st.rounds,
        accepted_rounds=st.accepted,
        rejected_rounds=st.rejected,
        abandoned_rounds=st.abandoned,
        max_lanes_used=st.max_lanes_used,
        plan=format_tree(plan.tree),
        pilot_draws=pilot.draws,
        reason=plan.reason,
        expected_draws=expected if plan.expected_draws is None else plan.expected_draws,
    )


def run_exact_method(source: DrawSource, request: Request) -> TemperatureResult:
    """method="exact": the explicit tree, or the one a pilot plans (plan="auto" above s = 2);
    refused at once when even its least cost, or its planned cost, is far beyond the budget."""
    request.check_least_cost(source.draws, source.calls, source.num_problems or 1)
    if _planned_exact(request):
        pilot = run_pilot(source, request)
    else:
        pilot = Pilot.none(request, source)
    b = source.num_problems
    budget: int | torch.Tensor | None = request.max_draws
    if source.row_draws is not None:  # one generator per problem: each problem's own budget
        budget = request.row_budget(source.row_draws)
    elif budget is None and b is not None:
        budget = request.budget(source.draws, b)
    if pilot.cost is not None and isinstance(budget, int):
        _refuse_far_beyond(source, request, pilot, budget - source.draws)
    return execute_exact(source, request, Plan("exact", None, pilot, tree=pilot.tree), budget)


def _refuse_far_beyond(source: DrawSource, request: Request, pilot: Pilot, left: int) -> None:
    assert pilot.cost is not None and pilot.tree is not None
    planned = float(pilot.cost.sum()) * request.num_outputs
    if planned <= FAR_BEYOND_BUDGET * left:
        return
    raise DrawBudgetExceeded(
        f"the exact method's plan {format_tree(pilot.tree)!r} needs ~{planned:.3g} base draws "
        f"(estimated from a pilot of {pilot.draws} draws), far beyond the {left} left of the "
        f"budget (max_draws={request.max_draws}; None means "
        f"{DEFAULT_MAX_DRAWS_PER_OUTPUT:.0e} per output): refused before running. Raise "
        'max_draws, or use method="batch" (approximate, fixed cost).',
        {"draws": source.draws, "model_calls": source.calls, "planned_draws": planned},
    )


class BatchChunk(NamedTuple):
    """The batch method on c outputs: chosen samples (B, c, ...) and keys (B, c, d), cascade
    levels and depths (B, c), the pools' distinct keys (B, c) and singleton shares (B, c), and
    the pools' keys themselves (B, c N or N, d), for the accuracy estimate."""

    samples: Samples
    keys: torch.Tensor
    level: torch.Tensor
    depth: torch.Tensor
    distinct: torch.Tensor
    singles: torch.Tensor
    pool_keys: torch.Tensor


def batch_chunk(
    source: DrawSource,
    request: Request,
    gen: torch.Generator | RowGenerators,
    c: int,
    pool: tuple[Samples, torch.Tensor] | None,
    n: int,
    estimator: str,
) -> BatchChunk:
    """c outputs of the batch method: one draw call for all c pools of N (or the shared
    ``pool``), then the vectorised selection over the B x c pools. ``pool_keys``: the first
    ACCURACY_MAX_DRAWS pooled keys per problem (B, M, d), for the accuracy estimate."""
    samples, keys = pool if pool is not None else source(n * c)
    b, _, d = keys.shape
    if pool is not None:
        problem_keys = keys.unsqueeze(1).expand(b, c, n, d)
    else:
        problem_keys = keys.view(b, c, n, d)
    sel = batch_selection(
        problem_keys.reshape(b * c, n, d), request.temperature, generator=gen, estimator=estimator
    )
    pos = sel.index.view(b, c)
    if pool is None:
        pos = pos + n * torch.arange(c, device=pos.device).unsqueeze(0)
    chosen_keys = keys.gather(1, pos.unsqueeze(-1).expand(b, c, d))
    distinct, singles = pool_statistics(sel.counts.view(b, c, n))
    level, depth = sel.level.view(b, c), sel.depth.view(b, c)
    pool_keys = keys[:, :ACCURACY_MAX_DRAWS]
    return BatchChunk(samples.gather(pos), chosen_keys, level, depth, distinct, singles, pool_keys)


def run_batch(
    source: DrawSource,
    request: Request,
    gen: torch.Generator | RowGenerators,
    plan: Plan | None = None,
) -> TemperatureResult:
    """The batch method, in chunks of outputs (BATCH_CHUNK_DRAWS draws per call at most);
    ``res.accuracy`` is estimated from the first pools. N and the rule: the plan's, else
    num_samples and the options' estimator ("auto": binomial). A plan with ``reuse_pilot``
    cuts its pools from the pilot's draws, drawing only what the pilot lacks."""
    o = request.options
    n = request.pool_size if plan is None or plan.num_samples is None else plan.num_samples
    estimator = plan.estimator if plan is not None and plan.estimator is not None else None
    if estimator is None:
        estimator = "binomial" if o.estimator == "auto" else o.estimator
    n_out = o.num_outputs
    per_chunk = max(1, BATCH_CHUNK_DRAWS // n)
    if plan is not None and plan.reuse_pilot:  # pools cut from the pilot's draws (decide.py)
        assert plan.pilot.samples is not None and plan.pilot.keys is not None
        source.replay(plan.pilot.samples, plan.pilot.keys)
    pool = source(n) if o.share_pool else None
    parts = [
        batch_chunk(source, request, gen, min(per_chunk, n_out - lo), pool, n, estimator)
        for lo in range(0, n_out, per_chunk)
    ]
    joined = [torch.cat(t, 1) for t in zip(*(p[1:6] for p in parts), strict=True)]
    keys, level, depth, distinct, singles = joined
    pool_keys = parts[0].pool_keys
    if request.temperature == 1.0 or estimator == "plugin":
        accuracy = _plain_accuracy(request)
    elif not o.estimate_accuracy:
        accuracy = Accuracy.not_estimated(o.tolerance)
    else:
        accuracy = batch_accuracy(
            pool_keys,
            n,
            request.s,
            o.tolerance,
            level,
            batched=request.batched,
            estimator=estimator,
        )
    res = finish(
        source,
        request,
        cat_samples([p.samples for p in parts]),
        keys,
        "batch",
        cascade_level=level,
        cascade_depth=depth,
        pool_stats=(distinct, singles, n),
        reason=None if plan is None else plan.reason,
        expected_draws=None if plan is None else plan.expected_draws,
        pilot_draws=0 if plan is None else plan.pilot.draws,
        accuracy=accuracy,
    )
    res.extra["num_samples"] = n
    res.extra["estimator"] = estimator
    res.extra["pool_keys"] = pool_keys  # for auto's re-planning; conclude drops it
    return res


def _plain_accuracy(request: Request) -> Accuracy:
    """T = 1: the batch pick is a uniform draw from the pool, i.e. exactly P. The "plugin"
    estimator is not covered by the estimate (NaN)."""
    tol = request.options.tolerance
    if request.temperature == 1.0:
        return Accuracy(0.0, 0.0, 1.0, "T = 1: a uniform pick from the pool is a draw of P", tol)
    return Accuracy(
        math.nan,
        1.0,
        0.9,
        'unknown: the accuracy estimate covers estimator="binomial" and "jackknife"',
        tol,
    )


def run_auto(source: DrawSource, request: Request, gen: torch.Generator) -> TemperatureResult:
    """Decide before any exact draw, then keep the decision; a batch attempt that misses the
    tolerance is a pilot for one re-plan (see :func:`~.decide.refine`)."""
    b0 = source.num_problems or 1
    early = decide_without_pilot(request, b0, Pilot.none(request, source))
    if early is not None:
        if early.method == "batch":
            return _auto_batch(source, request, gen, early)
        res = execute_exact(source, request, early, request.max_draws)  # T = 1
        res.expected_draws = float(
            request.num_outputs * (res.keys.shape[0] if request.batched else 1)
        )
        return conclude(res, request)
    batch_cost, allowance = pilot_allowance(request, b0)
    pilot = run_pilot(source, request, ref_cost=batch_cost, allowance=allowance)
    plan = decide(pilot, request)
    while (grow := batch_plan_growth(pilot, plan, request, source.draws)) is not None:
        pilot = extend_pilot(source, request, pilot, grow)
        plan = decide(pilot, request)
    if plan.method == "batch":
        return _auto_batch(source, request, gen, plan)
    return conclude(_auto_exact(source, request, plan), request)


def _auto_exact(source: DrawSource, request: Request, plan: Plan) -> TemperatureResult:
    """Run the exact plan auto committed to, stopped beyond RUNAWAY_FACTOR x its estimate."""
    b = source.num_problems or 1
    budget = request.budget(source.draws, b)
    if request.max_draws is None and plan.expected_draws is not None:
        runaway = source.draws + math.ceil(RUNAWAY_FACTOR * plan.expected_draws) + RUNAWAY_SLACK * b
        budget = min(budget, runaway)
    return run_committed_exact(source, request, plan, budget)


def run_committed_exact(
    source: DrawSource, request: Request, plan: Plan, budget: int | torch.Tensor
) -> TemperatureResult:
    """:func:`execute_exact` for an exact plan auto committed to: an overrun raises, saying
    why the outputs are not returned (``budget``: in all, or per problem (B,))."""
    try:
        return execute_exact(source, request, plan, budget)
    except DrawBudgetExceeded as exc:
        what = f"max_draws={budget}" if isinstance(budget, int) else "a problem's own budget"
        raise DrawBudgetExceeded(
            f'method="auto" chose exact ({plan.reason}) and committed to it, but the run '
            f"overran {what} ({exc.stats.get('draws')} drawn; without max_draws the "
            f"limit is {RUNAWAY_FACTOR:g}x the plan's estimate). Its outputs are not returned: "
            "keeping only runs that finish in budget would favour outcomes with short rounds. "
            'Raise max_draws, or use method="batch".',
            exc.stats,
        ) from exc


def _auto_batch(
    source: DrawSource, request: Request, gen: torch.Generator, plan: Plan
) -> TemperatureResult:
    """A batch attempt; when its estimate misses LADDER_MARGIN x the tolerance (the aim that
    chose its N: an estimate just under the tolerance is too close to trust, the estimate is a
    noisy one), re-plan from its pools and run the new plan (exact or a larger N) if it fits
    what is left of the budget; a re-planned batch run whose estimate still misses the
    tolerance is re-planned again from its own pools, AUTO_REPLANS times at most."""
    res = run_batch(source, request, gen, plan)
    keys = res.extra.pop("pool_keys")
    acc = res.accuracy
    if acc is None or not acc.known or acc.estimate <= LADDER_MARGIN * acc.tolerance:
        seen = plan.pilot.keys if plan.reuse_pilot and plan.pilot.keys is not None else keys
        cost = "" if res.accuracy is None or res.accuracy.known else _unknown_cost(seen, request)
        return conclude(res, request, cost)
    attempts: list[str] = []
    cost = ""
    for replans in range(AUTO_REPLANS + 1):
        remaining = auto_budget(request, keys.shape[0]) - source.draws
        none = Pilot.none(request, source)
        better = refine_pools(keys, request, none, remaining, res.extra["num_samples"])
        cost = better.cost  # what reaching the tolerance would cost, from the latest pools
        if better.plan is None or replans == AUTO_REPLANS:
            break
        attempts.append(res.summary())
        drawn = source.draws  # the planning pilot and the attempts, all only planned
        if better.plan.method == "exact":
            res = _auto_exact(source, request, better.plan)
        else:
            res = run_batch(source, request, gen, better.plan)
            keys = res.extra.pop("pool_keys")
        res.pilot_draws = drawn
        acc = res.accuracy
        if acc is None or not acc.known or acc.estimate <= acc.tolerance:
            break
    if attempts:
        res.extra["attempts"] = attempts
    return conclude(res, request, cost)


def _unknown_cost(keys: torch.Tensor, request: Request) -> str:
    """Cost words for an attempt without repeated keys: exact needs at least ~M^2 / 6."""
    if request.s < 2.0:
        return ""
    floor = float(collision_floor(observed_counts(keys).cpu(), request.s).min())
    return (
        f"exact would need at least ~{floor:.3g} draws per output ({keys.shape[1]} draws per "
        "problem showed (almost) no repeated key)"
    )
