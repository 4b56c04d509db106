"""The batch approximation: pick one of N samples so that its outcome is ~P^(1/T)-distributed.

For each problem, every sample i has the count ``c_i`` of samples sharing its key. With
s = 1/T, outcome x gets weight C(c_x, s) (the generalised binomial
Gamma(c+1) / (Gamma(s+1) Gamma(c-s+1)), via lgamma), which qualifies when c_x > s - 1. At
T = 1/n this is the published CALM rule bit for bit: weights C(c, n) over outcomes with c >= n.
If no outcome qualifies the level drops s -> s - 1 -> ... (the published cascade n, n-1, ..., 1);
the level reached is reported. A chosen outcome's sample is picked uniformly among its copies,
so each sample i is drawn with probability proportional to C(c_i, s) / c_i.

This is an approximation: biased for finite N (it cannot choose an outcome it did not see).

As a state and steps (like the exact lanes): :func:`init_selection` turns keys into a
:class:`SelectionState` (counts, log weights, level, depth per problem); :func:`selection_step`
is the pure pick, Gumbel-max over the log weights given uniforms; :func:`finish_selection` packs
the pick into a :class:`BatchSelection`. :func:`batch_selection` chains the three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .errors import InvalidArgumentError
from .grouping import group_counts
from .jackknife import jackknife_log_probs
from .keys import normalize_batch_keys
from .rows import RowGenerators
from .validation import check_temperature, inverse_temperature, make_generator, uniform

ESTIMATORS = ("binomial", "plugin", "jackknife")


@dataclass(frozen=True)
class BatchSelection:
    """What :func:`batch_selection` chose, per problem.

    index:  LongTensor (B,), the chosen sample's position in [0, N).
    level:  float64 (B,), the power s actually used (1/T unless the cascade stepped down).
    depth:  LongTensor (B,), cascade steps taken (0: no outcome was missing at level 1/T).
    counts: LongTensor (B, N), how many samples share each sample's key.
    """

    index: torch.Tensor
    level: torch.Tensor
    depth: torch.Tensor
    counts: torch.Tensor


def _log_weights(
    counts: torch.Tensor, s: float, estimator: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample log selection weights (B, N) float64, with the level and cascade depth (B,).

    Defined for every s = 1/T, including s = inf (T below ~5.6e-309): once the cascade steps
    below 1/T (floor(s) > c_max), the level is c_max + frac(s), where only the outcomes seen
    c_max times qualify, all with the same weight per sample: the pick is uniform among the
    pool's most frequent outcomes, which is also the T -> 0 limit. The level and depth are
    computed from floor(s) and frac(s) separately, so they stay exact however large s is
    (``depth`` saturates at 2^62).
    """
    if estimator == "jackknife":
        log_w, level, depth = _log_weights(counts, s, "binomial")
        return jackknife_log_probs(counts, s, log_w, depth), level, depth
    c = counts.double()
    b = c.shape[0]
    c_max = c.amax(dim=1)
    if estimator == "plugin":
        level = torch.full((b,), s, dtype=torch.float64, device=c.device)
        depth = torch.zeros(b, dtype=torch.long, device=c.device)
        if math.isinf(s):  # the limit of (s - 1) log c: only the largest count survives
            top = c == c_max.unsqueeze(1)
            zero = torch.zeros_like(c)
            return torch.where(top, zero, torch.full_like(c, float("-inf"))), level, depth
        return (s - 1.0) * torch.log(c), level, depth
    whole = float(math.floor(s)) if math.isfinite(s) else math.inf
    frac = s - whole if math.isfinite(s) else 0.0
    # the cascade steps down while no count c satisfies c > level - 1: depth = floor(s) - c_max
    steps = (whole - c_max).clamp(min=0.0)
    stepped = steps > 0
    level = torch.where(stepped, c_max + frac, torch.full_like(c_max, s))
    depth = steps.clamp(max=float(2**62)).long()
    n = c.shape[1]
    if (n + 1) * (n + 1) <= b * n:
        # tabulate the weight of every (level, count) pair once, then look samples up; the
        # levels are s (row 0) and j + frac(s) (row j = c_max, after stepping)
        rows = torch.arange(n + 1, dtype=torch.float64, device=c.device)
        levels = torch.where(rows == 0, torch.full_like(rows, s), rows + frac).unsqueeze(1)
        table = _binomial_log_weights(rows.unsqueeze(0), levels)
        row = torch.where(stepped, c_max.long(), torch.zeros_like(c_max).long())
        log_w = table.flatten()[row.unsqueeze(1) * (n + 1) + counts]
    else:
        log_w = _binomial_log_weights(c, level.unsqueeze(1))
    return log_w, level, depth


def _binomial_log_weights(c: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """log(C(c, level) / c) up to a per-level constant; -inf where c <= level - 1 (broadcasts)."""
    gap = c - level + 1.0  # > 0 where the sample's outcome qualifies
    qualifies = gap > 0
    log_w = torch.lgamma(c + 1.0) - torch.lgamma(torch.where(qualifies, gap, torch.ones_like(gap)))
    log_w = log_w - torch.log(c)
    return torch.where(qualifies, log_w, torch.full_like(log_w, float("-inf")))


class SelectionState(NamedTuple):
    """The batch selection of B problems before the pick (every field is per problem).

    counts: LongTensor (B, N), how many samples share each sample's key.
    log_w:  float64 (B, N), each sample's log selection weight, up to a per-row constant
            (-inf: never picked); the pick is the softmax of a row.
    level:  float64 (B,), the power s the weights use (1/T unless the cascade stepped down).
    depth:  LongTensor (B,), cascade steps taken.
    """

    counts: torch.Tensor
    log_w: torch.Tensor
    level: torch.Tensor
    depth: torch.Tensor


def init_selection(
    keys: torch.Tensor, temperature: float, estimator: str = "binomial"
) -> SelectionState:
    """The state for ``keys`` (B, N) or (B, N, d) at ``temperature`` (weights of ``estimator``)."""
    if estimator not in ESTIMATORS:
        raise InvalidArgumentError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    t = check_temperature(temperature)
    k = normalize_batch_keys(keys)
    counts, _ = group_counts(k)
    log_w, level, depth = _log_weights(counts, inverse_temperature(t), estimator)
    return SelectionState(counts, log_w, level, depth)


def selection_step(state: SelectionState, u: torch.Tensor) -> torch.Tensor:
    """The pick, a pure function of the state and uniforms ``u`` (float64 (B, N) in (0, 1)):
    argmax of log_w + Gumbel(u) per row, so sample i is chosen with probability
    softmax(log_w)_i when ``u`` is uniform. Returns LongTensor (B,)."""
    gumbel = -torch.log(-torch.log(u.clamp(min=1e-300)))
    return torch.argmax(state.log_w + gumbel, dim=1)


def finish_selection(state: SelectionState, index: torch.Tensor) -> BatchSelection:
    """The :class:`BatchSelection` of the pick ``index`` (B,) made on ``state``."""
    return BatchSelection(index=index, level=state.level, depth=state.depth, counts=state.counts)


def selection_probabilities(
    keys: torch.Tensor, temperature: float, *, estimator: str = "binomial"
) -> torch.Tensor:
    """Exact probability (float64 (B, N)) that :func:`select_from_batch` picks each sample."""
    return torch.softmax(init_selection(keys, temperature, estimator).log_w, dim=1)


def batch_selection(
    keys: torch.Tensor,
    temperature: float,
    *,
    generator: torch.Generator | int | RowGenerators | None = None,
    estimator: str = "binomial",
) -> BatchSelection:
    """Choose one sample per problem; see the module docstring for the rule.

    keys: integer tensor (B, N) or (B, N, d) on any device; rows of d are compared exactly.
    estimator: "binomial" (generalised binomial with cascade; the published rule at T = 1/n),
    "jackknife" (the binomial rule with its 1/N bias removed, :mod:`.jackknife`; the binomial
    rule where the correction is undefined) or "plugin" ((c/N)^(1/T), kept for comparison).
    generator: one stream for all rows, or :class:`~.rows.RowGenerators` of B' problems whose
    rows are B' consecutive groups of B / B' (problem-major, as the batch method lays out its
    B' x c pools): each group's noise from its problem's own generator.
    Vectorised over B and N with fixed shapes: no Python loop over rows or samples, no host sync
    (with RowGenerators, one ``torch.rand`` per problem).
    """
    state = init_selection(keys, temperature, estimator)
    shape = tuple(state.log_w.shape)
    if generator is None:  # torch's global RNG on the keys' device
        u = torch.rand(shape, dtype=torch.float64, device=state.log_w.device)
    elif isinstance(generator, RowGenerators):  # rows grouped by problem, problem-major
        b = len(generator)
        rows, n = shape
        u = generator.uniform((b, (rows // b) * n), state.log_w.device).view(rows, n)
    else:
        u = uniform(shape, make_generator(generator), state.log_w.device)
    return finish_selection(state, selection_step(state, u))


def select_from_batch(
    keys: torch.Tensor,
    temperature: float,
    generator: torch.Generator | int | None = None,
    *,
    estimator: str = "binomial",
) -> torch.Tensor:
    """The chosen sample index per problem: LongTensor (B,). See :func:`batch_selection`."""
    return batch_selection(keys, temperature, generator=generator, estimator=estimator).index
