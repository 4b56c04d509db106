"""The batch rule's output law and its true TV to P^(1/T), for a known categorical law.

For benchmarks and tests: the truth that :mod:`.accuracy` estimates without P. The output law Q_N
of the batch rule (pools of N i.i.d. draws of P, one pick per pool) is E[selection law of a pool];
it is computed by simulation, averaging the exact selection law
(:func:`~.batch.selection_probabilities`' rule) of ``pools`` pools. Outcomes of equal probability
are grouped first: within such a group every outcome has the same output probability by
symmetry (Q_N(x) is a function of P(x) for a fixed law), so the group totals are compared and the
Monte Carlo noise of single outcomes does not inflate the TV. Probabilities within a relative
``resolution`` (default 1%) of each other are grouped too, and treated as equal (their mean):
the law simulated differs from the given one by at most that relative amount per outcome, an
error far below the simulation noise, while spread laws with all probabilities distinct get a
usable TV (without grouping, thousands of rarely picked outcomes each add their own noise).

Precision. Each class's simulated share is a mean over the pools whose variance v_c is measured
from the pools (:func:`~.accuracy.selection_law_and_error`); ``BatchTV.error`` = (1/2) sum_c
sqrt(v_c) bounds the expected Monte Carlo error of the TV (|TV^ - TV| <= (1/2) sum_c |q^_c - Q_c|
and E|q^_c - Q_c| <= sqrt(v_c)) as far as v_c is estimated well. The pool-to-pool law of a
class's share is skewed (rare pools pick a tail class with a large share), so with a few hundred
pools the typical TV is below the truth and v_c is itself underestimated: on the 12-law suite
near TV 0.02, 256 pools were off by up to 0.03, 2,048 by up to ~1.5x ``error``.
:func:`batch_tv_against` therefore starts at :data:`DECIDE_START_POOLS` pools and doubles them
(continuing the same simulation) until the TV is clearly on one side of a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .accuracy import _ClassLaw, _tempered_classes, selection_law_and_error
from .errors import InvalidArgumentError
from .options import positive_int
from .validation import check_temperature, inverse_temperature

#: pools simulated per chunk (bounds memory: chunk * num_samples float64 values at a time).
CHUNK_POOLS = 512
#: :func:`batch_tv_against`: pools simulated first, at most, and at most pools x N draws (but
#: never fewer pools than the start); the TV is decided when it is DECIDE_MARGIN errors from
#: the threshold (SMALL_POOL_MARGIN below TRUSTED_POOLS pools, where the skew makes the error
#: unreliable: 512 pools were seen 2.3 errors off), or, from TRUSTED_POOLS on, when its error is
#: below threshold / DECIDE_PRECISION (a near tie: the TV is that close to the threshold).
DECIDE_START_POOLS = 512
TRUSTED_POOLS = 2048
DECIDE_MAX_POOLS = 16_384
DECIDE_MAX_DRAWS = 2**25
DECIDE_MARGIN = 2.0
SMALL_POOL_MARGIN = 4.0
DECIDE_PRECISION = 8.0


@dataclass(frozen=True)
class BatchTV:
    """The batch rule's true TV to P^(1/T) for a known law.

    tv:    TV(Q_N, P^(1/T) / Z), from ``pools`` simulated pools.
    noise: a Monte Carlo error scale: half the TV between the laws of two halves of the pools
           (0 when the law has one class per distinct probability and few classes).
    pools: pools simulated.
    error: Monte Carlo error scale of ``tv``: (1/2) sum over classes of the standard error of
           the class's simulated share (module docstring, "Precision").
    """

    tv: float
    noise: float
    pools: int
    error: float = math.nan


def _classes(probs: torch.Tensor, resolution: float) -> _ClassLaw:
    """Group probabilities equal within ``resolution`` (relative): the class law (1, C)."""
    p = torch.as_tensor(probs, dtype=torch.float64).flatten()
    if (p < 0).any() or not math.isclose(float(p.sum()), 1.0, rel_tol=1e-9, abs_tol=1e-9):
        raise InvalidArgumentError("probs must be non-negative and sum to 1")
    p = p[p > 0]
    if resolution > 0:
        code = torch.floor(torch.log(p) / math.log1p(resolution)).long()
    else:
        code = torch.unique(p, return_inverse=True)[1]
    _, cls, sizes = torch.unique(code, return_inverse=True, return_counts=True)
    mass = torch.zeros(sizes.numel(), dtype=torch.float64).scatter_add_(0, cls, p)
    return _ClassLaw(mass=(mass / mass.sum()).unsqueeze(0), atoms=sizes.unsqueeze(0))


def batch_output_law(
    probs: torch.Tensor,
    temperature: float,
    num_samples: int,
    *,
    pools: int = 4096,
    generator: torch.Generator | int | None = None,
    resolution: float = 0.01,
    estimator: str = "binomial",
) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor]:
    """Q per class (2, C) for two halves of the pools, the pools in each half, and P^(1/T) per
    class (C,), float64 (classes: probabilities grouped within ``resolution``)."""
    halves, sizes, target, _ = _halves(
        probs, temperature, num_samples, pools, generator, resolution, estimator
    )
    return halves, sizes, target


def _halves(
    probs: torch.Tensor,
    temperature: float,
    num_samples: int,
    pools: int,
    generator: torch.Generator | int | None,
    resolution: float,
    estimator: str,
) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor, torch.Tensor]:
    """:func:`batch_output_law` and the variance of the all-pools mean per class (C,)."""
    t = check_temperature(temperature)
    n = positive_int("num_samples", num_samples)
    r = positive_int("pools", pools)
    s = inverse_temperature(t)
    gen = torch.Generator().manual_seed(generator) if isinstance(generator, int) else generator
    law = _classes(probs, resolution)
    width = law.mass.shape[1]
    halves = torch.zeros(2, width, dtype=torch.float64)
    var = torch.zeros(width, dtype=torch.float64)
    done, first = 0, 0
    while done < r:
        k = min(CHUNK_POOLS, max(1, (r + 1) // 2), r - done)
        q, err = selection_law_and_error(law, s, n, k, gen, estimator)
        var += err[0] * (k * k)
        if done * 2 < r:  # the chunk's pools go to the half its first pool is in
            halves[0] += q[0] * k
            first += k
        else:
            halves[1] += q[0] * k
        done += k
    sizes = torch.tensor([first, r - first], dtype=torch.float64).clamp(min=1).unsqueeze(1)
    return halves / sizes, (first, r - first), _tempered_classes(law, s)[0], var / (r * r)


def batch_tv(
    probs: torch.Tensor,
    temperature: float,
    num_samples: int,
    *,
    pools: int = 4096,
    generator: torch.Generator | int | None = 0,
    resolution: float = 0.01,
    estimator: str = "binomial",
) -> BatchTV:
    """True TV between the batch rule's output law (pools of ``num_samples``) and P^(1/T).

    probs: 1-D law (sums to 1). Cost: ``pools * num_samples`` simulated draws, chunked.
    resolution: probabilities within this relative distance are grouped (module docstring);
    0 groups only exactly equal ones. estimator: the rule ("binomial" or "jackknife").
    """
    halves, sizes, target, var = _halves(
        probs, temperature, num_samples, pools, generator, resolution, estimator
    )
    r = int(pools)
    w = torch.tensor(sizes, dtype=torch.float64).unsqueeze(1) / r
    q = (halves * w).sum(0)
    tv = 0.5 * float((q - target).abs().sum())
    noise = 0.25 * float((halves[0] - halves[1]).abs().sum())
    return BatchTV(tv=tv, noise=noise, pools=r, error=0.5 * float(var.sqrt().sum()))


def batch_tv_against(
    probs: torch.Tensor,
    temperature: float,
    num_samples: int,
    threshold: float,
    *,
    generator: int = 0,
    resolution: float = 0.01,
    estimator: str = "binomial",
    max_pools: int = DECIDE_MAX_POOLS,
) -> BatchTV:
    """:func:`batch_tv` with as many pools as it takes to say on which side of ``threshold``
    (> 0) the true TV is: from :data:`DECIDE_START_POOLS` pools, doubled while the TV is within
    :data:`DECIDE_MARGIN` errors of the threshold (:data:`SMALL_POOL_MARGIN` below
    :data:`TRUSTED_POOLS` pools) and, from :data:`TRUSTED_POOLS` on, the error is above
    threshold / :data:`DECIDE_PRECISION`, up to ``max_pools`` pools and
    :data:`DECIDE_MAX_DRAWS` simulated draws (at least the start). Each doubling simulates new
    pools (seed ``generator`` + the pools done) and pools them with the earlier ones, so the
    cost is the final pool count times ``num_samples``. The result's ``error`` states the
    precision reached; ``noise`` is the halves' scale of the last batch of pools simulated (as
    :func:`batch_tv` reports it)."""
    n = positive_int("num_samples", num_samples)
    cap = max(DECIDE_START_POOLS, min(max_pools, DECIDE_MAX_DRAWS // n))

    def decided(got: BatchTV) -> bool:
        trusted = got.pools >= TRUSTED_POOLS
        margin = DECIDE_MARGIN if trusted else SMALL_POOL_MARGIN
        precise = trusted and got.error <= threshold / DECIDE_PRECISION
        return abs(got.tv - threshold) >= margin * got.error or precise

    steps = _doublings(probs, temperature, n, DECIDE_START_POOLS, generator, resolution, estimator)
    return _first_of(steps, decided, cap)


def batch_tv_precise(
    probs: torch.Tensor,
    temperature: float,
    num_samples: int,
    *,
    precision: float = 0.1,
    floor: float = 0.0,
    start_pools: int = TRUSTED_POOLS,
    max_draws: int = DECIDE_MAX_DRAWS,
    generator: int = 0,
    resolution: float = 0.01,
    estimator: str = "binomial",
) -> BatchTV:
    """:func:`batch_tv` with as many pools as it takes for a relative precision: from
    ``start_pools`` pools, doubled (as :func:`batch_tv_against` does: new pools, seed
    ``generator`` + the pools done, pooled with the earlier ones) until the error is at most
    ``precision`` times the TV, or the TV is clearly below ``floor`` (TV + DECIDE_MARGIN errors
    < floor: below it the relative precision is not needed), or a doubling would exceed
    ``max_draws`` simulated draws (never fewer than ``start_pools`` pools). The result states
    the pools used and the error reached, so a capped one says how precise it is."""
    n = positive_int("num_samples", num_samples)
    start = positive_int("start_pools", start_pools)
    cap = max(start, max_draws // n)

    def enough(got: BatchTV) -> bool:
        return got.error <= precision * got.tv or got.tv + DECIDE_MARGIN * got.error < floor

    steps = _doublings(probs, temperature, n, start, generator, resolution, estimator)
    return _first_of(steps, enough, cap)


def _first_of(steps: Iterator[BatchTV], done: Callable[[BatchTV], bool], cap: int) -> BatchTV:
    """The first of ``steps`` (:func:`_doublings`) that is ``done``, or the last before a
    doubling would pass ``cap`` pools."""
    for got in steps:
        if done(got) or 2 * got.pools > cap:
            return got
    raise AssertionError("unreachable: the doublings never end")  # pragma: no cover


def _doublings(
    probs: torch.Tensor,
    temperature: float,
    n: int,
    start: int,
    generator: int,
    resolution: float,
    estimator: str,
) -> Iterator[BatchTV]:
    """The TV after ``start`` pools, then after each doubling of the pools simulated (new pools
    seeded ``generator`` + the pools done, pooled with the earlier ones), without end."""
    total = var = torch.zeros((), dtype=torch.float64)
    done, more = 0, start
    while True:
        halves, sizes, target, v = _halves(
            probs, temperature, n, more, generator + done, resolution, estimator
        )
        part = halves[0] * sizes[0] + halves[1] * sizes[1]
        total, var = total + part, var + v * more**2
        done += more
        tv = 0.5 * float((total / done - target).abs().sum())
        error = 0.5 * float(var.sqrt().sum()) / done
        noise = 0.25 * float((halves[0] - halves[1]).abs().sum())
        yield BatchTV(tv=tv, noise=noise, pools=done, error=error)
        more = done
