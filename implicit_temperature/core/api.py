"""``temperature_sample``: the one entry point that runs the exact, batch or auto method."""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from .batch import ESTIMATORS, batch_selection
from .cost import estimate_exact_draws
from .diagnostics import check_diagnostics, make_diagnostics
from .drawing import DrawSource
from .errors import DrawBudgetExceeded, InvalidTemperatureError
from .exact import DEFAULT_MAX_LANES, run_exact
from .grouping import group_counts
from .result import TemperatureResult
from .validation import check_positive_int, check_temperature, inverse_temperature, make_generator

METHODS = ("exact", "batch", "auto")

#: method="auto" picks exact when its estimated draws fit max_draws, or, without max_draws, this
#: many times the batch method's draws (num_samples per output): exactness is worth some cost.
AUTO_BUDGET_FACTOR = 10

logger = logging.getLogger(__name__)  # under "implicit_temperature"


def temperature_sample(
    draw: Callable[..., Any],
    temperature: float,
    *,
    key: Callable[[Any], Any] | None = None,
    method: str = "exact",
    num_samples: int = 200,
    num_outputs: int = 1,
    max_draws: int | None = None,
    generator: torch.Generator | int | None = None,
    batched: bool = False,
    share_pool: bool = False,
    max_lanes: int = DEFAULT_MAX_LANES,
    estimator: str = "binomial",
    key_name: str | Callable[[], str | None] | None = None,
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
        method: "exact" (exact P_T, T <= 1, random cost), "batch" (approximate, any T > 0, exactly
            num_samples draws per output), "auto" (a pilot batch of num_samples estimates the exact
            cost; exact if it fits the budget, else batch).
        num_samples: N, the batch size of the batch method and of auto's pilot.
        num_outputs: outputs per problem. They are independent; the batch method draws a fresh
            batch of N for each output, all in one ``draw`` call.
        max_draws: exact/auto: budget of base draws; the exact method raises
            :class:`DrawBudgetExceeded` (with the statistics so far) instead of exceeding it.
            None means ``DEFAULT_MAX_DRAWS_PER_OUTPUT`` (1e6) per output and problem.
        generator: torch.Generator or int seed; the same seed gives the same result.
        batched: see ``draw``.
        share_pool: batch method: one pool of N for all outputs (fewer draws; outputs correlated).
        max_lanes: exact method: most rounds run side by side per problem (one draw each per step).
        estimator: batch method weights, "binomial" (default) or "plugin" ((c/N)^(1/T)).
        key_name: a name for ``key`` (e.g. the quantizer's) used in ``res.diagnostics`` and in
            the :class:`TemperatureWarning` raised when temperature could not act; or a callable
            returning it, asked once the draws are done (for keys chosen lazily).

    Returns:
        :class:`TemperatureResult`. Exactness: ``method="exact"`` returns samples whose outcomes
        (keys) are exactly P_T-distributed and mutually independent; the sample is the stage-1 draw,
        so within one key it keeps the model's own law. ``method="batch"`` is an approximation that
        improves with N (see docs/algorithms.md). ``res.diagnostics`` says how many distinct keys
        the pools (batch) or the first draws (exact) had; a :class:`TemperatureWarning` is raised
        when almost every batch sample was distinct or one key covered every sample.
    """
    t = check_temperature(temperature)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    n_samples = check_positive_int(num_samples, "num_samples")
    n_out = check_positive_int(num_outputs, "num_outputs")
    lanes = check_positive_int(max_lanes, "max_lanes")
    if max_draws is not None:
        if isinstance(max_draws, bool) or not isinstance(max_draws, numbers.Integral):
            raise TypeError(f"max_draws must be an integer >= 1 or None, got {max_draws!r}")
        if max_draws < 1:
            raise ValueError(f"max_draws must be >= 1, got {max_draws}")
    if method == "exact" and t > 1.0:
        raise InvalidTemperatureError(
            f'method="exact" needs T <= 1 (got T={t}): sharpening is exact, but flattening needs '
            "P(x)^(1/T - 1), an unbounded factor that no algorithm using only samples can produce. "
            'Use method="batch" (approximate, any T > 0) or method="auto".'
        )
    gen = make_generator(generator)
    source = DrawSource(draw, key, batched=batched, generator=gen)
    if key_name is not None and not isinstance(key_name, str) and not callable(key_name):
        raise TypeError(
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

    if method == "batch":
        return _run_batch(source, t, n_samples, n_out, share_pool, estimator, gen, common)
    if method == "exact":
        return _run_exact(source, t, n_out, max_draws, lanes, common)
    return _run_auto(
        source, t, n_samples, n_out, max_draws, share_pool, lanes, estimator, gen, common
    )


def _finish(
    source: DrawSource, samples, keys: torch.Tensor, method: str, common: dict, **fields: Any
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
        extra={"batched": batched},
        diagnostics=diagnostics,
        **fields,
    )
    logger.info("temperature_sample: %s", result.summary())
    check_diagnostics(diagnostics, method=method, temperature=common["temperature"])
    return result


def _name_of_key(key_name: Any) -> str | None:
    name = key_name() if callable(key_name) else key_name
    return None if name is None else str(name)


def _run_exact(
    source: DrawSource,
    t: float,
    n_out: int,
    budget: int | None,
    lanes: int,
    common: dict,
    **fields: Any,
) -> TemperatureResult:
    out = run_exact(source, inverse_temperature(t), n_out, max_draws=budget, max_lanes=lanes)
    st = out.stats
    return _finish(
        source,
        out.samples,
        out.keys,
        "exact",
        common,
        rounds=st.rounds,
        accepted_rounds=st.accepted,
        rejected_rounds=st.rejected,
        abandoned_rounds=st.abandoned,
        max_lanes_used=st.max_lanes_used,
        **fields,
    )


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
    t: float,
    n: int,
    n_out: int,
    max_draws: int | None,
    share_pool: bool,
    lanes: int,
    estimator: str,
    gen: torch.Generator,
    common: dict,
) -> TemperatureResult:
    def batch(reason: str, expected: float | None = None) -> TemperatureResult:
        return _run_batch(
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

    if t > 1.0:
        return batch(f"T={t:g} > 1: no exact sample-only method exists above T = 1")
    if t == 1.0:  # B is only known after the first draw, so the expectation is set after it
        res = _run_exact(
            source,
            t,
            n_out,
            max_draws,
            lanes,
            common,
            reason="T = 1: the exact method costs one draw per output",
        )
        res.expected_draws = float(n_out * (res.keys.shape[0] if common["batched"] else 1))
        return res
    if max_draws is not None and max_draws < n:
        raise DrawBudgetExceeded(
            f'method="auto" needs a pilot of num_samples={n} draws but max_draws={max_draws}; '
            "raise max_draws or lower num_samples",
            {"draws": 0, "model_calls": 0},
        )
    _, pilot_keys = source(n)
    b = pilot_keys.shape[0]
    counts, _ = group_counts(pilot_keys)
    expected = float(estimate_exact_draws(counts, t).sum()) * n_out  # (B,) per output, summed
    budget = max_draws if max_draws is not None else AUTO_BUDGET_FACTOR * n * n_out * b
    remaining = budget - source.draws
    batch_cost = n * (1 if share_pool else n_out) * b
    # keep the batch method's draws in reserve, so a fallback after an exact overrun still fits
    exact_budget = remaining - batch_cost
    if batch_cost > remaining and not expected <= remaining:
        raise DrawBudgetExceeded(
            f'method="auto": neither method fits max_draws={max_draws} after the pilot '
            f"({source.draws} drawn): exact needs ~{expected:.3g} draws (pilot estimate), batch "
            f"needs {batch_cost}; raise max_draws or lower num_samples / num_outputs",
            {"draws": source.draws, "model_calls": source.calls},
        )
    if batch_cost > remaining:  # only exact can fit: no reserve, no fallback
        exact_budget = remaining
    if not math.isfinite(expected):
        return batch(
            f"the pilot of N={n} saw no {inverse_temperature(t):g}-fold collision, so "
            "Z_T is tiny and the exact method would be very costly",
            expected,
        )
    if expected > exact_budget:
        return batch(
            f"exact needs ~{expected:.3g} draws (pilot estimate) > budget {exact_budget}", expected
        )
    try:
        return _run_exact(
            source,
            t,
            n_out,
            exact_budget,
            lanes,
            common,
            reason=f"exact needs ~{expected:.3g} draws (pilot estimate) <= budget {exact_budget}",
            expected_draws=expected,
        )
    except DrawBudgetExceeded as exc:
        if batch_cost > budget - source.draws:
            raise
        return batch(
            f"exact ran over its budget of {exact_budget} draws after the pilot estimated "
            f"~{expected:.3g} ({exc.stats['draws']} spent); fell back to batch",
            expected,
        )
