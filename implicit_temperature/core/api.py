"""``temperature_sample``: the one entry point that runs the exact, batch or auto method."""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from .batch import ESTIMATORS, batch_selection
from .cost import choose_tree, pilot_power_sums
from .diagnostics import check_diagnostics, make_diagnostics
from .drawing import DrawSource, warn_if_seed_ignored
from .errors import (
    DrawBudgetExceeded,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidTemperatureError,
)
from .exact import DEFAULT_MAX_DRAWS_PER_OUTPUT, DEFAULT_MAX_LANES
from .plan import Tree, acceptance, format_tree, leaf, resolve_plan
from .progress import Progress
from .result import TemperatureResult
from .tree import run_tree
from .validation import check_positive_int, check_temperature, inverse_temperature, make_generator

METHODS = ("exact", "batch", "auto")

#: method="auto" without max_draws picks exact when its planned draws are at most this many times
#: the batch method's draws (num_samples per output): exactness is worth some cost.
AUTO_BUDGET_FACTOR = 10
#: method="auto" with max_draws picks exact when its planned draws are at most this share of what
#: is left of max_draws after the pilot, so that a run at twice its estimate still fits.
AUTO_EXACT_SHARE = 0.5
#: The exact method refuses to start when its planned draws exceed this many times the budget.
FAR_BEYOND_BUDGET = 10.0
#: No exact run is started whose least possible cost exceeds this many draws (float64 counts).
MAX_FEASIBLE_DRAWS = 2**53
#: Pilot (plan="auto" and method="auto"): starts at PILOT_MIN draws per problem and grows to
#: PILOT_SHARE of the planned cost (never beyond num_samples, nor beyond PILOT_BUDGET_SHARE of
#: max_draws), so that for a single output it stays small and for many it plans well.
PILOT_MIN = 16
PILOT_SHARE = 0.05
PILOT_BUDGET_SHARE = 0.25

logger = logging.getLogger(__name__)  # under "implicit_temperature"


def temperature_sample(
    draw: Callable[..., Any],
    temperature: float,
    *,
    key: Callable[[Any], Any] | None = None,
    method: str = "auto",
    plan: str | Tree = "auto",
    num_samples: int = 200,
    num_outputs: int = 1,
    max_draws: int | None = None,
    generator: torch.Generator | int | None = None,
    batched: bool = False,
    share_pool: bool = False,
    max_lanes: int = DEFAULT_MAX_LANES,
    estimator: str = "binomial",
    key_name: str | Callable[[], str | None] | None = None,
    progress: bool = False,
) -> TemperatureResult:
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
        num_samples: N, the batch size of the batch method, and the largest pilot of "auto".
        num_outputs: outputs per problem. They are independent; the batch method draws a fresh
            batch of N for each output, all in one ``draw`` call.
        max_draws: exact/auto: budget of base draws, pilot included; the exact method raises
            :class:`DrawBudgetExceeded` (with the statistics so far) instead of exceeding it, and
            refuses at once when its plan needs far more (``FAR_BEYOND_BUDGET``) or when even its
            least possible cost (1/T draws per output) exceeds it. None means
            ``DEFAULT_MAX_DRAWS_PER_OUTPUT`` (1e6) per output and problem.
        generator: torch.Generator or int seed; the same seed gives the same result.
        batched: see ``draw``.
        share_pool: batch method: one pool of N for all outputs (fewer draws; outputs correlated).
        max_lanes: exact method: most rounds run side by side per problem (one draw each per step).
        estimator: batch method weights, "binomial" (default) or "plugin" ((c/N)^(1/T)).
        key_name: a name for ``key`` (e.g. the quantizer's) used in ``res.diagnostics`` and in
            the :class:`TemperatureWarning` raised when temperature could not act; or a callable
            returning it, asked once the draws are done (for keys chosen lazily).
        progress: show progress of the exact method (a tqdm bar of draws against the planned
            total when tqdm is installed, else log lines). Off by default.

    Returns:
        :class:`TemperatureResult`. Exactness: ``method="exact"`` returns samples whose outcomes
        (keys) are exactly P_T-distributed and mutually independent; the sample is the stage-1 draw
        of a leaf round, so within one key it keeps the model's own law. ``method="batch"`` is an
        approximation that improves with N (see docs/algorithms.md). ``res.extra["plan"]`` is the
        tree used, ``res.expected_draws`` its planned draws (pilot not included) when a pilot
        was drawn, ``res.extra["pilot_draws"]`` the pilot's draws (counted in ``res.draws``).
        ``res.diagnostics`` says how many distinct keys the pools (batch) or the first draws
        (exact) had; a :class:`TemperatureWarning` is raised when almost every batch sample was
        distinct or one key covered every sample.

    Very small T: 1/T is defined for every positive float (inf below ~5.6e-309). The batch
    method's T -> 0 limit is a uniform pick among the pool's most frequent outcomes; the exact
    method needs at least 1/T draws per output, so it refuses with :class:`DrawBudgetExceeded`
    when that exceeds ``max_draws``, and "auto" then uses batch.
    """
    t = check_temperature(temperature)
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}, got {method!r}")
    if estimator not in ESTIMATORS:
        raise InvalidArgumentError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    n_samples = check_positive_int(num_samples, "num_samples")
    n_out = check_positive_int(num_outputs, "num_outputs")
    lanes = check_positive_int(max_lanes, "max_lanes")
    if max_draws is not None:
        if isinstance(max_draws, bool) or not isinstance(max_draws, numbers.Integral):
            raise InvalidArgumentTypeError(
                f"max_draws must be an integer >= 1 or None, got {max_draws!r}"
            )
        if max_draws < 1:
            raise InvalidArgumentError(f"max_draws must be >= 1, got {max_draws}")
    if method == "exact" and t > 1.0:
        raise InvalidTemperatureError(
            f'method="exact" needs T <= 1 (got T={t}): sharpening is exact, but flattening needs '
            "P(x)^(1/T - 1), an unbounded factor that no algorithm using only samples can produce. "
            'Use method="batch" (approximate, any T > 0) or method="auto".'
        )
    s = inverse_temperature(t)
    fixed_tree = None
    if t <= 1.0 and math.isfinite(s):
        fixed_tree = resolve_plan(plan, s)  # validates explicit trees early
    elif not (isinstance(plan, Tree) or isinstance(plan, str)):
        raise InvalidArgumentTypeError(
            f"plan must be 'auto', 'flat' or a tree string, got {plan!r}"
        )
    gen = make_generator(generator)
    warn_if_seed_ignored(draw, generator)
    source = DrawSource(draw, key, batched=batched, generator=gen)
    if key_name is not None and not isinstance(key_name, str) and not callable(key_name):
        raise InvalidArgumentTypeError(
            f"key_name must be a str, a callable returning one, or None, got "
            f"{type(key_name).__name__}"
        )
    common = dict(
        temperature=t,
        requested_method=method,
        num_outputs=n_out,
        batched=batched,
        key_name=key_name,
    )
    cfg = _Config(t, s, plan, fixed_tree, n_samples, n_out, max_draws, lanes, progress)

    if method == "batch":
        return _run_batch(source, t, n_samples, n_out, share_pool, estimator, gen, common)
    if method == "exact":
        return _run_exact(source, cfg, common)
    return _run_auto(source, cfg, share_pool, estimator, gen, common)


class _Config:
    """The exact method's settings, shared by exact and auto."""

    def __init__(self, t, s, plan, fixed_tree, n_samples, n_out, max_draws, lanes, progress):
        self.t, self.s, self.plan, self.fixed_tree = t, s, plan, fixed_tree
        self.n_samples, self.n_out, self.max_draws = n_samples, n_out, max_draws
        self.lanes, self.progress = lanes, progress


def _finish(
    source: DrawSource,
    samples,
    keys: torch.Tensor,
    method: str,
    common: dict,
    extra: dict | None = None,
    **fields: Any,
) -> TemperatureResult:
    batched = common["batched"]
    pool_counts = fields.pop("pool_counts", None)
    if source.keys.squeeze:
        keys = keys.squeeze(-1)
    if not batched:
        keys = keys[0]
        for name in ("cascade_level", "cascade_depth"):
            if fields.get(name) is not None:
                fields[name] = fields[name][0]
    diagnostics = make_diagnostics(
        pool_counts=pool_counts,
        seen_keys=None if pool_counts is not None else source.seen_keys(),
        cascade_level=fields.get("cascade_level"),
        key_name=_name_of_key(common.get("key_name")),
        batched=batched,
    )
    result = TemperatureResult(
        samples=samples.output(batched),
        keys=keys,
        method=method,
        temperature=common["temperature"],
        draws=source.draws,
        model_calls=source.calls,
        requested_method=common["requested_method"],
        num_outputs=common["num_outputs"],
        extra={"batched": batched, **(extra or {})},
        diagnostics=diagnostics,
        **fields,
    )
    logger.info("temperature_sample: %s", result.summary())
    check_diagnostics(diagnostics, method=method, temperature=common["temperature"])
    return result


def _name_of_key(key_name: Any) -> str | None:
    name = key_name() if callable(key_name) else key_name
    return None if name is None else str(name)


def _least_draws(cfg: _Config) -> float:
    """The fewest draws one output can cost with the plan (an accepted flat round at r draws
    ceil(r) times; every plan needs at least 1/T)."""
    if cfg.fixed_tree is not None:
        return cfg.fixed_tree.min_draws
    return float(math.ceil(cfg.s)) if math.isfinite(cfg.s) else math.inf


def _default_budget(source: DrawSource, cfg: _Config, b: int) -> int:
    return source.draws + DEFAULT_MAX_DRAWS_PER_OUTPUT * cfg.n_out * b


def _check_least_cost(source: DrawSource, cfg: _Config) -> None:
    """Refuse at once when even the cheapest possible run cannot fit (e.g. T -> 0)."""
    b = source.num_problems or 1
    least = _least_draws(cfg) * cfg.n_out * b
    budget = cfg.max_draws if cfg.max_draws is not None else _default_budget(source, cfg, b)
    if least > budget or least > MAX_FEASIBLE_DRAWS:
        what = (
            f"max_draws={cfg.max_draws}"
            if cfg.max_draws is not None
            else (f"the default budget of {DEFAULT_MAX_DRAWS_PER_OUTPUT:.0e} draws per output")
        )
        if least > MAX_FEASIBLE_DRAWS:
            what = f"any feasible run ({MAX_FEASIBLE_DRAWS:.1e} draws)"
        raise DrawBudgetExceeded(
            f"at T={cfg.t:.3g} every exact output costs at least {_least_draws(cfg):.3g} base "
            f"draws (1/T = {cfg.s:.3g}), {least:.3g} in all: beyond {what}. As T -> 0, P_T tends "
            'to the most likely outcomes; method="batch" (or "auto") returns the most frequent '
            "outcome of its pool there. Raise max_draws to run exact anyway.",
            {"draws": source.draws, "model_calls": source.calls},
        )


def _plan(
    source: DrawSource, cfg: _Config, ref_cost: float | None = None
) -> tuple[Tree, torch.Tensor | None, dict, dict, int]:
    """The tree to run, its planned cost per output (B,) (None without a pilot), the planned
    acceptance rates per node and per leaf, and the pilot's draws.

    The pilot (plan="auto" above s = 2, or whenever ``ref_cost`` asks for an estimate) starts at
    PILOT_MIN draws per problem and grows to PILOT_SHARE of the planned cost (or of ``ref_cost``
    when that is smaller), within num_samples and PILOT_BUDGET_SHARE of max_draws. Its draws only
    plan: they are never reused as samples (the plan depends on them).
    """
    needs_pilot = ref_cost is not None or (cfg.fixed_tree is None and cfg.s > 2.0)
    if not needs_pilot:
        return cfg.fixed_tree or leaf(cfg.s), None, {}, {}, 0
    cap = cfg.n_samples
    if cfg.max_draws is not None:
        b0 = source.num_problems or 1
        cap = min(cap, int(PILOT_BUDGET_SHARE * (cfg.max_draws - source.draws)) // b0)
    if cap < 2:  # no room for a pilot: no estimate
        return cfg.fixed_tree or leaf(cfg.s), None, {}, {}, 0
    start = source.draws
    parts: list[torch.Tensor] = []
    have, target = 0, min(PILOT_MIN, cap)
    while True:
        _, k = source(target - have)
        parts.append(k)
        have = target
        b = k.shape[0]
        if cfg.max_draws is not None:  # B is known now: the pilot's share per problem
            if source.draws > cfg.max_draws:
                raise DrawBudgetExceeded(
                    f"max_draws={cfg.max_draws} is below a pilot of {have} draws for each of "
                    f"the {b} problems; raise max_draws",
                    {"draws": source.draws, "model_calls": source.calls},
                )
            cap = min(cap, int(PILOT_BUDGET_SHARE * (cfg.max_draws - start)) // b)
        ps = pilot_power_sums(torch.cat(parts, 1))
        tree, cost = choose_tree(ps, cfg.s, cfg.plan)
        ref = float(cost.sum()) * cfg.n_out
        if ref_cost is not None:
            ref = min(ref, ref_cost)
        desired = cap if not math.isfinite(ref) else min(cap, math.ceil(PILOT_SHARE * ref / b))
        if have >= cap or desired < 2 * have:
            break
        target = desired
    rates = acceptance(tree, ps)
    leaves = sorted({t.s for t in tree.nodes() if t.is_leaf})
    log_s = ps.log_s(torch.tensor(leaves, dtype=torch.float64))
    leaf_rates = {r: torch.exp(log_s[:, i]) for i, r in enumerate(leaves)}
    return tree, cost, rates, leaf_rates, source.draws - start


def _execute(
    source: DrawSource,
    cfg: _Config,
    common: dict,
    tree: Tree,
    cost: torch.Tensor | None,
    rates: dict,
    leaf_rates: dict,
    pilot: int,
    budget: int | None,
    **fields: Any,
) -> TemperatureResult:
    prog = Progress(cfg.progress, f"exact T={cfg.t:g} plan={format_tree(tree)}")
    expected = None if cost is None else float(cost.sum()) * cfg.n_out
    if expected is not None:
        prog.set_total(source.draws + expected)
    prog.update(source.draws)
    try:
        out, run = run_tree(
            source,
            tree,
            cfg.n_out,
            max_draws=budget,
            max_lanes=cfg.lanes,
            rates=rates,
            leaf_rates=leaf_rates,
            on_draw=lambda: prog.update(source.draws),
        )
    finally:
        prog.close()
    st = out.stats
    extra = {
        "plan": format_tree(tree),
        "plan_draws_per_output": None if cost is None else float(cost.mean()),
        "pilot_draws": pilot,
        "pairs": run.pairs,
        "kept_pairs": run.kept,
    }
    fields.setdefault("expected_draws", expected)
    return _finish(
        source,
        out.samples,
        out.keys,
        "exact",
        common,
        extra=extra,
        rounds=st.rounds,
        accepted_rounds=st.accepted,
        rejected_rounds=st.rejected,
        abandoned_rounds=st.abandoned,
        max_lanes_used=st.max_lanes_used,
        **fields,
    )


def _run_exact(source: DrawSource, cfg: _Config, common: dict) -> TemperatureResult:
    _check_least_cost(source, cfg)
    tree, cost, rates, leaf_rates, pilot = _plan(source, cfg)
    b = source.num_problems
    budget = cfg.max_draws
    if budget is None and b is not None:
        budget = _default_budget(source, cfg, b)
    if cost is not None and budget is not None:
        planned = float(cost.sum()) * cfg.n_out
        left = budget - source.draws
        if not planned <= FAR_BEYOND_BUDGET * left:
            raise DrawBudgetExceeded(
                f"the exact method's plan {format_tree(tree)!r} needs ~{planned:.3g} base draws "
                f"(estimated from a pilot of {pilot} draws), far beyond the {left} left of the "
                f"budget (max_draws={cfg.max_draws}; None means "
                f"{DEFAULT_MAX_DRAWS_PER_OUTPUT:.0e} per output): refused before running. Raise "
                'max_draws, or use method="batch" (approximate, fixed cost).',
                {"draws": source.draws, "model_calls": source.calls, "planned_draws": planned},
            )
    return _execute(source, cfg, common, tree, cost, rates, leaf_rates, pilot, budget)


def _run_batch(
    source: DrawSource,
    t: float,
    n: int,
    n_out: int,
    share_pool: bool,
    estimator: str,
    gen: torch.Generator,
    common: dict,
    **fields: Any,
) -> TemperatureResult:
    pool = n if share_pool else n * n_out
    samples, keys = source(pool)  # one model call for every output's batch
    b, _, d = keys.shape
    if share_pool:
        problem_keys = keys.unsqueeze(1).expand(b, n_out, n, d)
    else:
        problem_keys = keys.view(b, n_out, n, d)
    sel = batch_selection(
        problem_keys.reshape(b * n_out, n, d), t, generator=gen, estimator=estimator
    )
    pos = sel.index.view(b, n_out)
    if not share_pool:
        pos = pos + n * torch.arange(n_out, device=pos.device).unsqueeze(0)
    chosen_keys = keys.gather(1, pos.unsqueeze(-1).expand(b, n_out, d))
    return _finish(
        source,
        samples.gather(pos),
        chosen_keys,
        "batch",
        common,
        cascade_level=sel.level.view(b, n_out),
        cascade_depth=sel.depth.view(b, n_out),
        pool_counts=sel.counts.view(b, n_out, n),
        **fields,
    )


def _run_auto(
    source: DrawSource,
    cfg: _Config,
    share_pool: bool,
    estimator: str,
    gen: torch.Generator,
    common: dict,
) -> TemperatureResult:
    """Decide between exact and batch before any exact draw, then keep the decision."""
    t, n, n_out = cfg.t, cfg.n_samples, cfg.n_out

    def batch(reason: str, expected: float | None = None, **extra: Any) -> TemperatureResult:
        res = _run_batch(
            source,
            t,
            n,
            n_out,
            share_pool,
            estimator,
            gen,
            common,
            reason=reason,
            expected_draws=expected,
        )
        res.extra.update(extra)
        return res

    if t > 1.0:
        return batch(f"T={t:g} > 1: no exact sample-only method exists above T = 1")
    if t == 1.0:  # one draw per output: exact is free
        if cfg.max_draws is not None and source.draws + n_out > cfg.max_draws:
            raise DrawBudgetExceeded(
                f"max_draws={cfg.max_draws} is below the {n_out} draws T = 1 needs",
                {"draws": 0, "model_calls": 0},
            )
        res = _execute(
            source,
            cfg,
            common,
            leaf(1.0),
            None,
            {},
            {},
            0,
            cfg.max_draws,
            reason="T = 1: the exact method costs one draw per output",
        )
        res.expected_draws = float(n_out * (res.keys.shape[0] if common["batched"] else 1))
        return res
    b0 = source.num_problems or 1
    batch_cost0 = n * (1 if share_pool else n_out) * b0
    if cfg.max_draws is not None:
        exact_limit = AUTO_EXACT_SHARE * cfg.max_draws
    else:
        exact_limit = AUTO_BUDGET_FACTOR * batch_cost0
    least = _least_draws(cfg) * n_out * b0
    if not least <= exact_limit:
        if cfg.max_draws is not None and batch_cost0 > cfg.max_draws:
            raise DrawBudgetExceeded(
                f'method="auto": neither method fits max_draws={cfg.max_draws}: exact needs at '
                f"least {least:.3g} draws (1/T = {cfg.s:.3g} per output), batch needs "
                f"{batch_cost0}; raise max_draws or lower num_samples / num_outputs",
                {"draws": source.draws, "model_calls": source.calls},
            )
        return batch(
            f"T={t:.3g}: exact needs at least 1/T = {cfg.s:.3g} draws per output "
            f"({least:.3g} in all), beyond the {exact_limit:.3g} auto allows"
        )
    tree, cost, rates, leaf_rates, pilot = _plan(source, cfg, ref_cost=float(batch_cost0))
    b = source.num_problems or 1
    batch_cost = n * (1 if share_pool else n_out) * b
    expected = float(cost.sum()) * n_out if cost is not None else math.inf
    remaining = None if cfg.max_draws is None else cfg.max_draws - source.draws
    if remaining is not None:
        limit = AUTO_EXACT_SHARE * remaining
        limit_text = f"{AUTO_EXACT_SHARE:g} x the {remaining} draws left of max_draws"
    else:
        limit = AUTO_BUDGET_FACTOR * batch_cost
        limit_text = f"{AUTO_BUDGET_FACTOR} x the batch method's {batch_cost} draws"
    plan_text = format_tree(tree)
    if expected <= limit:
        budget = cfg.max_draws if cfg.max_draws is not None else _default_budget(source, cfg, b)
        reason = (
            f"exact with plan {plan_text!r} needs ~{expected:.3g} draws (pilot of {pilot}) <= "
            f"{limit_text}"
        )
        try:
            return _execute(
                source,
                cfg,
                common,
                tree,
                cost,
                rates,
                leaf_rates,
                pilot,
                budget,
                reason=reason,
                expected_draws=expected,
            )
        except DrawBudgetExceeded as exc:
            raise DrawBudgetExceeded(
                f'method="auto" chose exact ({reason}) and committed to it, but the run '
                f"overran max_draws={budget} ({exc.stats.get('draws')} drawn). Its outputs are "
                "not returned: keeping only runs that finish in budget would favour outcomes "
                'with short rounds. Raise max_draws, or use method="batch".',
                exc.stats,
            ) from exc
    if remaining is not None and batch_cost > remaining:
        raise DrawBudgetExceeded(
            f'method="auto": neither method fits max_draws={cfg.max_draws} after the pilot '
            f"({source.draws} drawn): exact needs ~{expected:.3g} draws (plan {plan_text!r}), "
            f"batch needs {batch_cost}; raise max_draws or lower num_samples / num_outputs",
            {"draws": source.draws, "model_calls": source.calls},
        )
    return batch(
        f"exact with plan {plan_text!r} needs ~{expected:.3g} draws (pilot of {pilot}) > "
        f"{limit_text}",
        expected,
        plan=plan_text,
        pilot_draws=pilot,
    )
