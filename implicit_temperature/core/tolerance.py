"""Tolerance: the accuracy record of each result, what reaching the tolerance would cost, and the
warning (or error) when a result misses it.

Every result carries ``res.accuracy`` (:class:`~.accuracy.Accuracy`): 0 for exact results; for
batch results the estimate of :func:`~.accuracy.estimate_batch_tv` from the run's own pools (at
most ``ACCURACY_MAX_DRAWS`` draws per problem), never from P. ``method="auto"`` uses the same
estimates to choose N, or exact, when a first attempt misses the tolerance (:mod:`.decide`).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch

from .accuracy import (
    DEFAULT_CONFIDENCE,
    Accuracy,
    BatchTVEstimate,
    estimate_batch_tv,
)
from .errors import AccuracyWarning, InaccurateResultError
from .grouping import group_counts

#: The accuracy estimate of a batch result looks at most this many of its draws per problem.
ACCURACY_MAX_DRAWS = 20_000
#: Simulation sizes of the estimate attached to results, and of the cheaper point estimates used
#: to size N (no bootstrap replicates there).
RESULT_POOLS, RESULT_REPLICATES = 128, 4
LADDER_POOLS = 64
#: N is chosen where the point estimate is at most this share of the tolerance: the estimate's
#: own noise (sampling and simulation, ~+-30% at s = 10) must not land the result above it.
LADDER_MARGIN = 0.7
#: method="auto" re-plans a batch attempt at most this many times: the first attempt when its
#: estimate misses LADDER_MARGIN x the tolerance, a re-planned one only when its estimate misses
#: the tolerance itself (it would warn), while the budget allows; each re-plan reads the latest
#: attempt's pools, the largest sample so far.
AUTO_REPLANS = 3
#: The estimates are a deterministic function of the counts: their simulation has its own seed
#: (it never consumes the caller's generator, so sampling streams are unchanged by it).
ACCURACY_SEED = 0x1D7E


def accuracy_generator(device: torch.device) -> torch.Generator:
    """The estimator's own generator (fixed seed) on ``device``."""
    return torch.Generator(device=device).manual_seed(ACCURACY_SEED)


def observed_counts(keys: torch.Tensor) -> torch.Tensor:
    """Per-draw counts (B, M) of the first ``ACCURACY_MAX_DRAWS`` draws of keys (B, M, d)."""
    return group_counts(keys[:, :ACCURACY_MAX_DRAWS])[0]


#: The pool sizes auto chooses N from: LADDER_BASE x 2^(k/2), a factor sqrt(2) apart (k >= 0), so
#: that the N it picks is within sqrt(2) of the smallest that meets the tolerance (a doubling
#: ladder overshoots by up to 2x).
LADDER_BASE = 25


def ladder_size(k: int) -> int:
    """The k-th pool size of the ladder, round(LADDER_BASE x 2^(k/2))."""
    return int(round(LADDER_BASE * 2 ** (k / 2)))


def ladder_sizes(start: int, largest: float) -> list[int]:
    """The ladder's sizes in [start, largest], ascending."""
    out, k = [], 0
    largest = min(largest, 2.0**40)
    while ladder_size(k) <= largest:
        if ladder_size(k) >= start:
            out.append(ladder_size(k))
        k += 1
    return out


@dataclass(frozen=True)
class Ladder:
    """Point estimates of the batch rule's TV for pool sizes ``sizes``, float64 (B,) each
    (``tv[i]`` for ``sizes[i]``); ``reached``: the smallest size found whose worst problem meets
    the tolerance, or None; ``estimator``: the rule ("binomial" or "jackknife")."""

    sizes: tuple[int, ...]
    tv: tuple[torch.Tensor, ...]
    reached: int | None
    estimator: str = "binomial"


def batch_ladder(
    counts: torch.Tensor,
    s: float,
    tolerance: float,
    start: int,
    largest: float,
    estimator: str = "binomial",
) -> Ladder:
    """Estimate the batch rule's TV on the ladder's sizes in [start, largest] from the observed
    counts (B, M) and find the smallest whose worst problem's estimate is at most LADDER_MARGIN
    x ``tolerance``. The error falls with N, so every other size is tried (doubling) up to the
    first that meets it, then the size between it and the last that did not. ``estimator``: the
    rule ("binomial" or "jackknife"); its cost is N draws per output either way."""
    sizes = ladder_sizes(start, largest)
    tried: list[int] = []
    tvs: list[torch.Tensor] = []
    g = accuracy_generator(counts.device)

    def meets(n: int) -> tuple[bool, bool]:
        est = estimate_batch_tv(
            counts, n, s, pools=LADDER_POOLS, replicates=0, generator=g, estimator=estimator
        )
        tv = torch.where(est.known, est.estimate, torch.ones_like(est.estimate))
        tried.append(n)
        tvs.append(tv)
        return float(tv.max()) <= LADDER_MARGIN * tolerance, bool(est.known.all())

    reached = None
    evens = sizes[::2] + ([sizes[-1]] if len(sizes) % 2 == 0 and sizes else [])
    for i, n in enumerate(evens):
        ok, known = meets(n)
        if ok:
            reached = n
            between = sizes[2 * i - 1] if 0 < 2 * i <= len(sizes) - 1 else None
            if between is not None and between < n and meets(between)[0]:
                reached = between
            break
        if not known:  # unknown stays unknown at any N
            break
    order = sorted(range(len(tried)), key=tried.__getitem__)
    return Ladder(tuple(tried[i] for i in order), tuple(tvs[i] for i in order), reached, estimator)


def batch_accuracy(
    keys: torch.Tensor,
    num_samples: int,
    s: float,
    tolerance: float,
    cascade_level: torch.Tensor | None,
    *,
    batched: bool,
    estimator: str = "binomial",
) -> Accuracy:
    """The accuracy record of a batch result from its pools' keys (B, M, d), for the rule
    ``estimator`` ("binomial" or "jackknife")."""
    est = estimate_batch_tv(
        observed_counts(keys),
        num_samples,
        s,
        pools=RESULT_POOLS,
        replicates=RESULT_REPLICATES,
        generator=accuracy_generator(keys.device),
        estimator=estimator,
    )
    return _record(est, keys.shape[1], num_samples, tolerance, cascade_level, s, batched)


def _record(
    est: BatchTVEstimate,
    m: int,
    n: int,
    tolerance: float,
    cascade_level: torch.Tensor | None,
    s: float,
    batched: bool,
) -> Accuracy:
    known = bool(est.known.all())
    worst = float(est.estimate.max()) if known else math.nan
    upper = float(est.upper.max()) if known else 1.0
    seen = min(m, ACCURACY_MAX_DRAWS)
    if known:
        how = (
            f"plug-in bootstrap from the {seen} pooled draws per problem (fitted species law, "
            f"pools of N = {n} simulated); N p_max ~ {float(est.n_pmax.min()):.3g} vs 1/T = "
            f"{s:.3g}"
        )
    else:
        how = (
            f"unknown: fewer than 3 repeated keys among {seen} draws of some problem, so "
            "nothing about the law's collisions can be said"
        )
    eff = None
    if cascade_level is not None and math.isfinite(s):
        mean_level = float(cascade_level.double().mean())
        if mean_level < s * (1 - 1e-9) and mean_level > 0:
            eff = 1.0 / mean_level
    return Accuracy(
        estimate=worst,
        upper=upper,
        confidence=est.confidence if known else DEFAULT_CONFIDENCE,
        how=how,
        tolerance=tolerance,
        per_problem=est.estimate if batched else None,
        effective_temperature=eff,
    )


def inaccuracy_message(acc: Accuracy, temperature: float, cost: str, advice: str | None) -> str:
    """The AccuracyWarning text: estimate, effective temperature, cost to reach, advice."""
    if acc.known:
        head = (
            f"estimated TV to P^(1/T) is {acc.estimate:.3g} (upper bound {acc.upper:.3g} at "
            f"{acc.confidence:.0%}), above tolerance={acc.tolerance:g}"
        )
    else:
        head = (
            f"the TV to P^(1/T) is {acc.how}; the output may be close to a plain "
            f"model draw, not T={temperature:g}"
        )
    parts = [head]
    if acc.per_problem is not None and acc.known:
        bad = int((acc.per_problem > acc.tolerance).sum())
        parts.append(f"{bad} of {acc.per_problem.numel()} problems miss it")
    if acc.effective_temperature is not None:
        parts.append(
            f"the batch cascade stepped down: the output corresponds on average to "
            f"T ~ {acc.effective_temperature:.3g}, not {temperature:g}"
        )
    if cost:
        parts.append(cost)
    if advice != "":  # "": the caller's message already advises
        parts.append(advice or _DEFAULT_ADVICE)
    return "; ".join(parts)


_DEFAULT_ADVICE = (
    "raise max_draws (or the tolerance), or use a coarser key (quantizer) so that outcomes repeat"
)


def check_accuracy(
    result: Any, on_inaccurate: str, cost: str, advice: str | None, found: list[str] | None = None
) -> None:
    """Warn (:class:`AccuracyWarning`, at the user's line) or raise
    (:class:`InaccurateResultError`) when ``result.accuracy`` misses its tolerance. ``found``:
    the diagnostics' findings, put first in the same message (one warning per call)."""
    acc = result.accuracy
    if acc is None or acc.meets or not acc.estimated:
        return
    message = inaccuracy_message(acc, result.temperature, cost, "" if found else advice)
    if found:
        message = "; ".join([*found, message])
    if on_inaccurate == "raise":
        raise InaccurateResultError(message, result)
    warn(message, AccuracyWarning)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def warn(message: str, category: type[Warning]) -> None:
    """warnings.warn attributed to the first caller outside this package and outside torch
    (decorators such as ``torch.no_grad`` add frames of their own)."""
    level = 2  # stacklevel 2 = warn's caller
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and _internal(frame):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _internal(frame: FrameType) -> bool:
    name = str(frame.f_globals.get("__name__", ""))
    if name == "torch" or name.startswith("torch."):
        return True
    return os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR)
