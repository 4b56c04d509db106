"""``estimate(draw, T, ...)``: cost and accuracy of each method before paying for a run.

Only a pilot is drawn: num_samples draws per problem (the largest planning pilot of
``method="auto"``; 200 for num_samples="auto"), enough for the batch rule's error to be
estimated. For the exact method it returns the planned draws (TV 0); for the batch method, at
N = num_samples and a few multiples, with each rule auto may use (binomial and jackknife weights
for estimator="auto"), the draws (N per output) and the estimated TV to P^(1/T)
(:func:`~.accuracy.estimate_batch_tv`, from the pilot only). ``decision`` is what
``method="auto"`` would start with after this pilot. It is also what
``temperature_sample(..., dry_run=True)`` returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .accuracy import estimate_batch_tv
from .decide import decide, decide_without_pilot, ladder_estimators
from .drawing import DrawSource
from .errors import DrawBudgetExceeded, InvalidArgumentError
from .grouping import group_counts
from .options import SampleOptions
from .pilot import plan_from_counts
from .plan import format_tree
from .request import KeyName, Request
from .rows import RowGenerators, is_row_generators
from .tolerance import LADDER_POOLS, accuracy_generator
from .validation import check_temperature, make_generator

#: batch sizes estimated: num_samples times these factors.
BATCH_FACTORS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class MethodEstimate:
    """One method's planned cost and estimated accuracy.

    method: "exact" or "batch"; plan: the exact tree (None for batch); num_samples: N and
    estimator: the weights, "binomial" or "jackknife" (batch);
    draws: planned base draws for the whole call (every output and problem, pilot not included;
    inf when no estimate exists); draws_per_output: the same per output and problem;
    estimated_tv: estimated TV to P^(1/T) (worst problem; 0 for exact; NaN when unknown).
    """

    method: str
    draws: float
    draws_per_output: float
    estimated_tv: float
    plan: str | None = None
    num_samples: int | None = None
    estimator: str | None = None


@dataclass(frozen=True)
class Estimate:
    """What :func:`estimate` found: the pilot's draws (per call), each method's estimate, and the
    method auto would start with (``decision``, with its ``reason``)."""

    temperature: float
    pilot_draws: int
    methods: tuple[MethodEstimate, ...]
    decision: str
    reason: str | None

    def __str__(self) -> str:
        lines = [f"T={self.temperature:g}, pilot of {self.pilot_draws} draws; auto: {self.reason}"]
        for m in self.methods:
            what = f"exact plan {m.plan!r}"
            if m.method == "batch":
                rule = "" if m.estimator in (None, "binomial") else f" {m.estimator}"
                what = f"batch N={m.num_samples}{rule}"
            lines.append(
                f"  {what:<24} {m.draws_per_output:>12.4g} draws/output   "
                f"estimated TV {m.estimated_tv:.3g}"
            )
        return "\n".join(lines)


def estimate(
    draw: Callable[..., Any],
    temperature: float,
    *,
    key: Callable[[Any], Any] | None = None,
    batched: bool = False,
    key_name: KeyName = None,
    options: SampleOptions | None = None,
    **sample_options: Any,
) -> Estimate:
    """Run only a pilot and say what each method would cost and how accurate it would be.

    Arguments as :func:`~.api.temperature_sample` (the same keywords; ``num_outputs`` scales the
    planned draws). The pilot is ``num_samples`` draws per problem; nothing is returned as a
    sample. The decision reported is ``decide``'s on this pilot (auto's own pilot is usually
    smaller, and a batch attempt that misses the tolerance is re-planned, see
    :func:`~.api.temperature_sample`).
    """
    t = check_temperature(temperature)
    opts = SampleOptions.from_kwargs(sample_options, where="estimate()", base=options)
    request = Request.make(t, opts, batched=batched, key_name=key_name)
    given = opts.generator
    if is_row_generators(given):  # one stream per problem: the pilot's rows drawn from each
        if not batched:
            raise InvalidArgumentError(
                "generator= is a list (one stream per problem), which needs batched=True"
            )
        generator: torch.Generator | RowGenerators = RowGenerators(given)
    else:
        generator = make_generator(given)
    source = DrawSource(draw, key, batched=batched, generator=generator)
    m = request.pool_size
    if opts.max_draws is not None and opts.max_draws < m:
        raise DrawBudgetExceeded(
            f"max_draws={opts.max_draws} is below the pilot of num_samples={m} draws",
            {"draws": 0, "model_calls": 0},
        )
    _, keys = source(max(m, 2))
    counts = group_counts(keys)[0].cpu()
    pilot = plan_from_counts(
        counts, request, draws=source.draws, total_draws=source.draws, calls=source.calls
    )
    early = decide_without_pilot(request, counts.shape[0], pilot)
    b = counts.shape[0]
    methods: list[MethodEstimate] = []
    outputs = opts.num_outputs * b
    if t < 1.0 and math.isfinite(request.s) and pilot.cost is not None:
        assert pilot.tree is not None
        cost = float(pilot.cost.sum()) * opts.num_outputs
        methods.append(MethodEstimate("exact", cost, cost / outputs, 0.0, format_tree(pilot.tree)))
    elif t == 1.0:
        methods.append(MethodEstimate("exact", float(outputs), 1.0, 0.0, "1"))
    per_n = (1 if opts.share_pool else opts.num_outputs) * b
    g = accuracy_generator(counts.device)
    rules = ladder_estimators(request) or ("binomial",)
    for rule in rules:
        for factor in BATCH_FACTORS:
            n = m * factor
            est = estimate_batch_tv(
                counts, n, request.s, pools=LADDER_POOLS, replicates=0, generator=g, estimator=rule
            )
            tv = float(est.estimate.max()) if bool(est.known.all()) else math.nan
            if t == 1.0:
                tv = 0.0
            cost = float(n * per_n)
            methods.append(MethodEstimate("batch", cost, cost / outputs, tv, None, n, rule))
    if early is not None:
        decision, reason = early.method, early.reason
    else:
        try:
            plan = decide(pilot, request)
            decision, reason = plan.method, plan.reason
        except DrawBudgetExceeded as exc:
            decision, reason = "none", str(exc)
    return Estimate(t, source.draws, tuple(methods), decision, reason)
