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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .accuracy import _ClassLaw, _tempered_classes, selection_law
from .errors import InvalidArgumentError
from .options import positive_int
from .validation import check_temperature, inverse_temperature

#: pools simulated per chunk (bounds memory: chunk * num_samples float64 values at a time).
CHUNK_POOLS = 512


@dataclass(frozen=True)
class BatchTV:
    """The batch rule's true TV to P^(1/T) for a known law.

    tv:    TV(Q_N, P^(1/T) / Z), from ``pools`` simulated pools.
    noise: a Monte Carlo error scale: half the TV between the laws of two halves of the pools
           (0 when the law has one class per distinct probability and few classes).
    pools: pools simulated.
    """

    tv: float
    noise: float
    pools: int


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
    t = check_temperature(temperature)
    n = positive_int("num_samples", num_samples)
    r = positive_int("pools", pools)
    s = inverse_temperature(t)
    gen = torch.Generator().manual_seed(generator) if isinstance(generator, int) else generator
    law = _classes(probs, resolution)
    width = law.mass.shape[1]
    halves = torch.zeros(2, width, dtype=torch.float64)
    done, first = 0, 0
    while done < r:
        k = min(CHUNK_POOLS, max(1, (r + 1) // 2), r - done)
        q = selection_law(law, s, n, k, gen, estimator)[0]
        if done * 2 < r:  # the chunk's pools go to the half its first pool is in
            halves[0] += q * k
            first += k
        else:
            halves[1] += q * k
        done += k
    sizes = torch.tensor([first, r - first], dtype=torch.float64).clamp(min=1).unsqueeze(1)
    return halves / sizes, (first, r - first), _tempered_classes(law, s)[0]


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
    halves, sizes, target = batch_output_law(
        probs,
        temperature,
        num_samples,
        pools=pools,
        generator=generator,
        resolution=resolution,
        estimator=estimator,
    )
    r = int(pools)
    w = torch.tensor(sizes, dtype=torch.float64).unsqueeze(1) / r
    q = (halves * w).sum(0)
    tv = 0.5 * float((q - target).abs().sum())
    noise = 0.25 * float((halves[0] - halves[1]).abs().sum())
    return BatchTV(tv=tv, noise=noise, pools=r)
