"""How far the batch rule's output law is from P^s, estimated from what a run saw (never from P).

The batch rule (:mod:`.batch`) picks one of N pooled samples with weight C(c, s) on an outcome seen
c times. Its output law Q_N is self-normalised importance sampling with unbiased weight estimates:
biased for finite N, and far off when the pool rarely holds an outcome ``ceil(s)`` times (the
cascade then steps down). This module estimates TV(Q_N, P^s / Z) per problem from a sample of the
law P that the run observed (its pools, its pilot), summarised by the per-sample counts.

Estimator (plug-in bootstrap on a smoothed species law). From the observed sample of M draws and
its fingerprint f_c (the number of outcomes seen exactly c times), build a law P~ whose atoms are
grouped in classes of equal mass:

* the rare outcomes (seen at most ``HEAD_COUNT`` times, or not at all) are described by a
  histogram of masses on a log grid, n_g outcomes of mass x_g / M, fitted by maximum likelihood
  (EM) to f_1..f_HEAD_COUNT (the number of outcomes seen c times is Poisson with mean
  sum_g n_g Pois(c; x_g));
* an outcome seen c times gets the posterior mean of its mass under that histogram,
  E[x | c] / M (Robbins' empirical Bayes: the raw shares c / M of a near-uniform law look far
  more unequal than the law is, which would overstate the rule's error), or c / M beyond
  ``HEAD_COUNT``; never less than an outcome seen fewer times;
* the unseen outcomes: n_g exp(-x_g) outcomes at grid point g;
* the unseen outcomes share Good-Turing's missing mass f_1 / M, the seen ones the rest.

Then Q~_N, the batch rule's output law for pools of N drawn from P~, is computed per class by
simulation (``pools`` pools per problem, each pool's exact selection law summed per class, with a
control variate; within a class every atom has the same output probability by symmetry, so
comparing class totals is exact), and the estimate is TV(Q~_N, P~^s / Z~).

Simulation noise. A class's simulated output share q_c is a mean over the pools with variance
v_c (measured from the pools); |q_c - t_c| overstates the class's true error by about
sqrt(v_c) where that error is small, and a plug-in law has dozens of single-atom classes, so
with 32 pools this noise alone doubled the estimate on several laws. Each class therefore
contributes sqrt(max((q_c - t_c)^2 - NOISE_SHARE v_c, 0)) / 2: removing the whole variance
would be unbiased for the squared error but the clamp at 0 then biases small errors low;
half of it was the best compromise on the calibration suite (docs/benchmarks.md).

Upper bound (bootstrap). ``replicates`` samples of M draws are drawn from P~ and the estimator is
rerun on each (with ``REPLICATE_POOL_SHARE`` of the pools: their own noise only widens the
bound, and they are most of the cost); their deviations from the estimate mimic the estimate's
own error (the bootstrap principle). The bound is the estimate plus t times the root mean square
deviation of the replicates from it (which counts their bias as well as their spread, so a
plug-in biased either way is covered), t the ``confidence`` quantile of Student's t with
``replicates`` degrees of freedom. Its coverage is measured, not proved: see the calibration
section of docs/benchmarks.md.

Where it is biased (measured, docs/benchmarks.md). The estimate is a smooth function of a noisy
fingerprint, and TV at s = 1/T >= 4 is very sensitive to the ratio of the top shares, so with
few draws (M = N = 50) it is as often far below as far above the truth; that is a limit of
the sample, not of the fit, and the bound is wide there. On near-uniform laws seen through
few repeats (each outcome seen about once) the fitted histogram is wider than the law and the
estimate is too high (up to ~3x at M = 500 draws over 1,000 outcomes): it errs towards warning.

Unknown. When fewer than ``MIN_REPEATED`` outcomes were seen twice or more, the sample says
nothing about the law's collisions (a continuous model, a fine quantizer): the cost of anything
exact is at least of the order of M^2 draws and the batch rule's error can be anything. The
estimate is then NaN and the upper bound 1.

Everything is vectorised over B problems (and over pools and replicates): fixed shapes, no Python
loop over rows or samples. The frontier methods reuse it for a top-level selection on a pool of
P^(s1) draws with exponent s - s1: pass that pool's counts and that exponent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .batch import _log_weights
from .errors import InvalidArgumentError

#: fewer outcomes seen at least twice than this: the estimate is unknown (NaN, bound 1).
MIN_REPEATED = 3
#: outcomes seen more often than this keep their empirical share; rarer ones are smoothed.
HEAD_COUNT = 20
#: grid of the rare outcomes' mass histogram: GRID points from GRID_LOW / M to (HEAD_COUNT + 5) / M.
GRID = 64
GRID_LOW = 0.01
#: EM steps of the histogram fit.
EM_STEPS = 300
#: EMS smoothing after each EM step: Gaussian kernel, SMOOTH grid steps wide (0: plain EM).
SMOOTH = 1.0
_SMOOTH_KERNEL = torch.exp(
    -0.5 * (torch.arange(-4, 5, dtype=torch.float64) / max(SMOOTH, 1e-9)) ** 2
)
_SMOOTH_KERNEL = (_SMOOTH_KERNEL / _SMOOTH_KERNEL.sum()).view(1, 1, -1)
#: classes of the plug-in law lighter than this are dropped.
MIN_CLASS_MASS = 1e-12
#: default confidence of the upper bound.
DEFAULT_CONFIDENCE = 0.9
#: default simulated pools per plug-in law, and bootstrap replicates of the observed sample.
DEFAULT_POOLS = 128
DEFAULT_REPLICATES = 16
#: share of the simulated pools' variance removed from each class's squared error before the TV
#: (module docstring, "Simulation noise"); measured on the calibration suite.
NOISE_SHARE = 0.5
#: the bootstrap replicates simulate this share of ``pools`` (at least ``MIN_REPLICATE_POOLS``):
#: their own simulation noise only widens the bound, and they are most of the cost.
REPLICATE_POOL_SHARE = 0.25
MIN_REPLICATE_POOLS = 16


@dataclass(frozen=True)
class Accuracy:
    """How far a result is from P^(1/T): ``res.accuracy``.

    estimate:    estimated TV between the law of the returned outcomes and P^(1/T); the worst
                 problem's when there are several; 0.0 for exact results; NaN when unknown (the
                 run saw too few repeated keys to say anything).
    upper:       an upper bound on that TV at ``confidence`` (1.0 when unknown).
    confidence:  the bound's stated confidence (its coverage is measured in docs/benchmarks.md).
    how:         how they were obtained, in words.
    tolerance:   the tolerance the call asked for; ``meets`` says whether the estimate is within.
    per_problem: float64 (B,) estimates per problem (batched calls), else None.
    effective_temperature: where the batch cascade stepped below 1/T, 1 / (mean level used): the
                 temperature the output effectively corresponds to; None otherwise.
    estimated:   False when the caller skipped the estimate (``estimate_accuracy=False``): the
                 estimate is then NaN, the bound 1, and nothing warns.
    """

    estimate: float
    upper: float
    confidence: float
    how: str
    tolerance: float
    per_problem: torch.Tensor | None = None
    effective_temperature: float | None = None
    estimated: bool = True

    @property
    def known(self) -> bool:
        return not math.isnan(self.estimate)

    @property
    def meets(self) -> bool:
        """True when the estimate is known and at most the tolerance."""
        return self.known and self.estimate <= self.tolerance

    @classmethod
    def exact(cls, tolerance: float) -> Accuracy:
        """The record of an exact result: TV 0 by construction."""
        return cls(0.0, 0.0, 1.0, "exact method: the outcomes are P^(1/T)-distributed", tolerance)

    @classmethod
    def not_estimated(cls, tolerance: float) -> Accuracy:
        """The record of a batch result whose estimate was skipped (``estimate_accuracy=False``):
        nothing is claimed, nothing warns."""
        how = "not estimated: the call passed estimate_accuracy=False"
        return cls(math.nan, 1.0, DEFAULT_CONFIDENCE, how, tolerance, estimated=False)


@dataclass(frozen=True)
class BatchTVEstimate:
    """Per-problem estimate of TV(law of the batch rule's output, P^s / Z); float64 (B,) each.

    estimate:   the plug-in estimate (NaN where ``known`` is False).
    upper:      upper bound at ``confidence`` (1.0 where unknown).
    known:      bool (B,): enough repeated outcomes to say anything.
    n_pmax:     N * p_max (p_max estimated as c_max / M): the regime marker. Below s = 1/T the
                pool rarely holds the top outcome ``s`` times and the cascade steps down.
    confidence: the upper bound's stated confidence.
    """

    estimate: torch.Tensor
    upper: torch.Tensor
    known: torch.Tensor
    n_pmax: torch.Tensor
    confidence: float


@dataclass(frozen=True)
class _ClassLaw:
    """A law whose atoms come in classes of equal mass, per world: float64/long (W, C)."""

    mass: torch.Tensor  # total mass of each class (rows sum to 1; 0 for padding)
    atoms: torch.Tensor  # number of atoms of each class (>= 1)


def fingerprint(counts: torch.Tensor) -> torch.Tensor:
    """f (B, M + 1) float64: f[b, c] = outcomes seen exactly c times in problem b's sample.

    counts: LongTensor (B, M), each sample's count of its key within its problem (as returned by
    :func:`~.grouping.group_counts` or ``BatchSelection.counts``).
    """
    b, m = counts.shape
    f = torch.zeros(b, m + 1, dtype=torch.float64, device=counts.device)
    f.scatter_add_(1, counts, torch.ones_like(counts, dtype=torch.float64))
    c = torch.arange(m + 1, dtype=torch.float64, device=counts.device).clamp(min=1.0)
    return f / c


def smoothed_law(f: torch.Tensor) -> _ClassLaw:
    """The plug-in law P~ of the module docstring, from fingerprints f (B, M + 1).

    Class 0..G-1: the unseen outcomes at the grid points of the fitted histogram; class G + c - 1:
    the f_c outcomes seen c times (c = 1..M). Classes with no atom have mass 0.
    """
    b, width = f.shape
    c = torch.arange(width, dtype=torch.float64, device=f.device)
    m = (f * c).sum(1, keepdim=True)
    x = _grid(f.device)
    low = f[:, 1 : min(width, HEAD_COUNT + 1)]
    n_atoms = _fit_histogram(low, x)  # (B, G) outcomes per grid point
    h = low.shape[1]
    cs = torch.arange(1, h + 1, dtype=torch.float64, device=f.device)
    kern = (cs * torch.log(x).unsqueeze(1) - x.unsqueeze(1) - torch.lgamma(cs + 1.0)).exp()
    post = n_atoms.unsqueeze(2) * kern.unsqueeze(0)  # (B, G, H): outcome at g seen c times
    shrunk = (post * x.view(1, -1, 1)).sum(1) / post.sum(1).clamp(min=1e-300)  # E[M p | c]
    seen_x = c[1:].expand(b, width - 1).clone()
    seen_x[:, :h] = torch.where(low > 0, shrunk, cs.expand(b, h))
    seen_x = torch.cummax(seen_x, dim=1).values  # more often seen, never lighter
    seen = f[:, 1:] * seen_x
    unseen = n_atoms * torch.exp(-x) * x  # expected unseen outcomes per grid point, times M p
    # Good-Turing: the unseen outcomes share f1 / M, the seen ones the rest
    f1 = f[:, 1:2]
    unseen = unseen * (f1 / m) / unseen.sum(1, keepdim=True).clamp(min=1e-300)
    seen = seen * (1.0 - f1 / m) / seen.sum(1, keepdim=True).clamp(min=1e-300)
    unseen_atoms = (n_atoms * torch.exp(-x)).round().clamp(min=1.0)
    mass = torch.cat([unseen, seen], dim=1)
    atoms = torch.cat([unseen_atoms, f[:, 1:].clamp(min=1.0)], dim=1)
    mass = torch.where(mass > MIN_CLASS_MASS, mass, 0.0)
    mass = mass / mass.sum(1, keepdim=True)
    return _ClassLaw(mass=mass, atoms=atoms.round().long())


def _grid(device: torch.device) -> torch.Tensor:
    """Expected counts M p of the histogram's grid points, float64 (G,), log-spaced."""
    return torch.logspace(
        math.log10(GRID_LOW), math.log10(HEAD_COUNT + 5.0), GRID, dtype=torch.float64, device=device
    )


def _fit_histogram(low: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Atoms per grid point (B, G) maximising the Poisson likelihood of the rare counts.

    low: f_1..f_H (B, H). Model: n_g outcomes of expected count x_g each; the number of outcomes
    seen c times is Poisson with mean sum_g n_g Pois(c; x_g), fitted for 1 <= c <= H by EM (the
    multiplicative update for the mixing weights of a truncated Poisson mixture), from a start
    spread evenly in log mass. A fixed number of steps, vectorised over B.
    """
    h = low.shape[1]
    if h == 0:
        return torch.zeros(low.shape[0], x.numel(), dtype=torch.float64, device=low.device)
    cs = torch.arange(1, h + 1, dtype=torch.float64, device=low.device)
    log_k = cs * torch.log(x).unsqueeze(1) - x.unsqueeze(1) - torch.lgamma(cs + 1.0)
    kern = log_k.exp()  # (G, H): Pois(c; x_g)
    seen_share = kern.sum(1)  # P(1 <= c <= H) per grid point
    draws = (low * cs).sum(1, keepdim=True)
    n = draws / (x.numel() * x).unsqueeze(0).expand(low.shape[0], -1)
    back = kern.T / seen_share  # (H, G): the EM update's matrix, normalised per grid point
    smooth = _smoothing_matrix(x.numel(), n) if SMOOTH > 0 else None
    for _ in range(EM_STEPS):
        lam = (n @ kern).clamp(min=1e-300)  # (B, H)
        n = n * ((low / lam) @ back)
        if smooth is not None:  # EMS: smooth in log mass after each step
            n = n @ smooth
    return n


def _smoothing_matrix(g: int, like: torch.Tensor) -> torch.Tensor:
    """The EMS smoothing (a zero-padded convolution with the Gaussian kernel) as a (G, G)
    matrix S, so that ``n @ S`` smooths each row of n: S[j, i] = w[j - i + half]. One small
    matmul per EM step instead of a conv1d call, whose per-call overhead dominated the fit."""
    w = _SMOOTH_KERNEL.flatten().to(like)
    half = w.numel() // 2
    idx = torch.arange(g, device=like.device)
    offset = idx.view(-1, 1) - idx.view(1, -1) + half
    valid = (offset >= 0) & (offset < w.numel())
    return torch.where(valid, w[offset.clamp(0, w.numel() - 1)], torch.zeros((), dtype=like.dtype))


def compact(law: _ClassLaw) -> _ClassLaw:
    """Drop the classes of mass 0 that every world shares (the width shrinks to the widest row)."""
    used = law.mass > 0
    width = int(used.sum(1).max())
    order = torch.argsort(used.long(), dim=1, descending=True, stable=True)[:, :width]
    return _ClassLaw(mass=law.mass.gather(1, order), atoms=law.atoms.gather(1, order))


def draw_atoms(
    law: _ClassLaw, n: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """n i.i.d. atoms per world: (keys, classes), LongTensor (W, n) each; keys identify atoms."""
    cls = torch.multinomial(law.mass.float(), n, replacement=True, generator=generator)
    atoms = law.atoms.gather(1, cls)
    u = torch.rand(cls.shape, dtype=torch.float64, generator=generator, device=cls.device)
    within = torch.minimum((u * atoms.double()).long(), atoms - 1)
    offset = torch.cumsum(law.atoms, 1) - law.atoms
    return offset.gather(1, cls) + within, cls


def _tempered_classes(law: _ClassLaw, s: float) -> torch.Tensor:
    """P~^s / Z~ summed per class, float64 (W, C)."""
    a = law.atoms.double()
    log_atom = torch.log(law.mass) - torch.log(a)  # -inf for padding classes
    if math.isinf(s):
        top = log_atom == log_atom.amax(1, keepdim=True)
        w = torch.where(top, a, torch.zeros_like(a))
        return w / w.sum(1, keepdim=True)
    return torch.softmax(torch.log(a) + s * log_atom, dim=1)


def selection_law(
    law: _ClassLaw,
    s: float,
    n: int,
    pools: int,
    generator: torch.Generator | None,
    estimator: str = "binomial",
) -> torch.Tensor:
    """The batch rule's output law per class for pools of n from ``law``: float64 (W, C),
    averaged over ``pools`` simulated pools per world (each pool's selection law is exact).

    Control variate: the weight share C(c_x, s) / E[W] of an outcome (E[W] = sum_x E C(c_x, s),
    exact for a known law) has a known mean and follows the selection law closely where the rule
    is accurate; it is subtracted with the regression coefficient fitted on the pools (per
    class, clamped to [0, 1]), which removes most of the noise there and none of the signal.
    """
    return selection_law_and_error(law, s, n, pools, generator, estimator)[0]


def selection_law_and_error(
    law: _ClassLaw,
    s: float,
    n: int,
    pools: int,
    generator: torch.Generator | None,
    estimator: str = "binomial",
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`selection_law` and the variance of its Monte Carlo mean per class (W, C): the
    pool-to-pool variance of the control-variate-adjusted selection law over ``pools``."""
    w, width = law.mass.shape
    keys, cls = draw_atoms(law, pools * n, generator)
    keys, cls = keys.view(w * pools, n), cls.view(w * pools, n)
    counts = _pool_counts(keys)
    log_w, _, _ = _log_weights(counts, s, estimator)
    probs = torch.softmax(log_w, dim=1)
    log_mean, log_total = _expected_weights(law, s, n)
    usable = torch.isfinite(log_total)  # E[W] > 0: some outcome can reach level s
    k = torch.arange(n + 1, dtype=torch.float64, device=keys.device)
    per_count = _log_binomial(k, s) - torch.log(k)  # log C(c, s) / c, tabulated for c = 0..n
    log_share = per_count[counts] - log_total.repeat_interleave(pools).unsqueeze(1)
    share = torch.where(usable.repeat_interleave(pools).unsqueeze(1), log_share.exp(), 0.0)
    sums = _class_moments(cls, probs, share, w, pools, width)  # (5, W, C)
    mean = torch.where(usable.unsqueeze(1), (log_mean - log_total.unsqueeze(1)).exp(), 0.0)
    p_bar, s_bar = sums[0] / pools, sums[1] / pools
    cov = sums[4] - pools * p_bar * s_bar
    var = (sums[3] - pools * s_bar * s_bar).clamp(min=0.0)
    beta = torch.where(var > 0, cov / var.clamp(min=1e-300), 0.0).clamp(0.0, 1.0)
    spread = (sums[2] - pools * p_bar * p_bar) - 2 * beta * cov + beta * beta * var
    err = spread.clamp(min=0.0) / max(pools - 1, 1) / pools
    return p_bar - beta * (s_bar - mean), err


def _class_moments(
    cls: torch.Tensor, picked: torch.Tensor, share: torch.Tensor, w: int, pools: int, width: int
) -> torch.Tensor:
    """Per world and class, over its pools, the sums of a, b, a^2, b^2 and a b, (5, W, C)
    float64, where a and b are a pool's total of ``picked`` and of ``share`` over its samples of
    that class (cls, picked, share: (W * pools, n)). With more classes than samples per pool
    (a spread law has thousands, a pool of N touches at most N) each pool's per-class totals
    are formed sparsely (its samples sorted by class, segment sums: cost W pools n log n, not
    W pools C); otherwise as dense (W * pools, C) tables."""
    if width <= cls.shape[1]:
        a = torch.zeros(cls.shape[0], width, dtype=torch.float64, device=cls.device)
        b = torch.zeros_like(a).scatter_add_(1, cls, share)
        a = a.scatter_add_(1, cls, picked)
        parts = (a, b, a * a, b * b, a * b)
        return torch.stack([v.view(w, pools, width).sum(1) for v in parts])
    cs, order = torch.sort(cls, dim=1, stable=True)
    vals = torch.stack([picked.gather(1, order), share.gather(1, order)])  # (2, R, n)
    cum = torch.cumsum(vals, dim=2)
    last = torch.ones_like(cs, dtype=torch.bool)
    last[:, :-1] = cs[:, 1:] != cs[:, :-1]  # the last sample of each class in its pool
    ends = torch.where(last.unsqueeze(0), cum, 0.0)
    before = torch.cummax(torch.where(last, torch.arange(cs.shape[1], device=cs.device), -1), 1)
    prev = torch.cat([torch.full_like(cs[:, :1], -1), before.values[:, :-1]], dim=1)
    base = torch.where(prev >= 0, cum.gather(2, prev.clamp(min=0).expand(2, -1, -1)), 0.0)
    a, b = torch.where(last, ends - base, 0.0).unbind(0)
    world = torch.arange(w, device=cs.device).repeat_interleave(pools).unsqueeze(1) * width
    index = (world + cs).flatten()
    out = torch.zeros(5, w * width, dtype=torch.float64, device=cs.device)
    for i, v in enumerate((a, b, a * a, b * b, a * b)):
        out[i].scatter_add_(0, index, v.flatten())
    return out.view(5, w, width)


def _log_binomial(c: torch.Tensor, s: float) -> torch.Tensor:
    """log C(c, s) (generalised binomial), -inf where c <= s - 1 (the outcome does not qualify)."""
    if math.isinf(s):
        return torch.full_like(c, -math.inf)
    gap = c - s + 1.0
    ok = gap > 0
    val = torch.lgamma(c + 1.0) - math.lgamma(s + 1.0) - torch.lgamma(torch.where(ok, gap, 1.0))
    return torch.where(ok, val, -math.inf)


def _expected_weights(law: _ClassLaw, s: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log E[sum over a class's atoms of C(c_x, s)] (W, C) and log E[W] (W,), c_x ~ Bin(n, q).

    For a whole s the factorial moment E[C(c, s)] = C(n, s) q^s (0 for s > n) is closed; for
    a fractional s the expectation is summed over c = 0..n."""
    q = law.mass / law.atoms.double()  # per-atom mass (W, C)
    if math.isfinite(s) and s == math.floor(s):
        per_atom = _log_binomial(torch.tensor(float(n), dtype=torch.float64), s) + torch.xlogy(
            torch.tensor(s, dtype=torch.float64), q
        )
        per_atom = torch.where(q > 0, per_atom, -math.inf)
    else:
        per_atom = _summed_weights(q, s, n)
    log_mean = per_atom + torch.log(law.atoms.double())
    log_mean = torch.where(law.mass > 0, log_mean, -math.inf)
    return log_mean, torch.logsumexp(log_mean, dim=1)


def _summed_weights(q: torch.Tensor, s: float, n: int) -> torch.Tensor:
    """log E[C(c, s)] for c ~ Bin(n, q), per entry of q (W, C), summed over c = 0..n."""
    k = torch.arange(n + 1, dtype=torch.float64, device=q.device)
    log_choose = math.lgamma(n + 1.0) - torch.lgamma(k + 1.0) - torch.lgamma(n - k + 1.0)
    qe = q.unsqueeze(-1)
    log_pmf = log_choose + torch.xlogy(k, qe) + torch.xlogy(n - k, 1.0 - qe)
    return torch.logsumexp(log_pmf + _log_binomial(k, s), dim=-1)


def _pool_counts(keys: torch.Tensor) -> torch.Tensor:
    """Per-sample count of its key within its row, LongTensor (R, n)."""
    from .grouping import group_counts

    return group_counts(keys.unsqueeze(-1))[0]


def plugin_tv(
    law: _ClassLaw,
    s: float,
    n: int,
    pools: int,
    generator: torch.Generator | None,
    estimator: str = "binomial",
) -> torch.Tensor:
    """TV(Q~_n, P~^s / Z~) per world, float64 (W,), for the rule ``estimator``."""
    q, err = selection_law_and_error(law, s, n, pools, generator, estimator)
    d = q - _tempered_classes(law, s)
    return 0.5 * (d * d - NOISE_SHARE * err).clamp(min=0.0).sqrt().sum(1)


def estimate_batch_tv(
    counts: torch.Tensor,
    pool_size: int,
    s: float,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    pools: int = DEFAULT_POOLS,
    replicates: int = DEFAULT_REPLICATES,
    generator: torch.Generator | None = None,
    estimator: str = "binomial",
) -> BatchTVEstimate:
    """Estimate, per problem, the TV between the batch rule's output law and P^s / Z.

    Args:
        counts: LongTensor (B, M) (or (M,)): for each observed draw of problem b, how many of the
            M observed draws of that problem share its key. The observed draws are whatever the
            run saw of P (the pools, the pilot; for a top-level selection over exact P^(s1)
            draws, those draws). Only the fingerprint (how many outcomes were seen c times)
            is used, never the keys' values.
        pool_size: N, the pool size of the batch rule whose error is wanted (may differ from M).
        s: the exponent the rule targets (1/T; s - s1 for a selection over P^(s1) draws), > 0,
            possibly inf.
        confidence: the upper bound's confidence, in (0, 1).
        pools, replicates: simulation sizes (module docstring); cost ~ B (1 + replicates)
            pools N.
        generator: for the simulation (the estimate is random through it; fix it to repeat).
        estimator: the rule whose error is wanted ("binomial", or "jackknife" for the
            jackknifed rule of :mod:`.jackknife`; the plug-in simulates that rule on P~).

    Returns:
        :class:`BatchTVEstimate` with float64 (B,) tensors on ``counts``' device. Approximate: a
        plug-in, whose calibration is measured in docs/benchmarks.md.
    """
    if counts.dim() == 1:
        counts = counts.unsqueeze(0)
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence!r}")
    if not s > 0:
        raise InvalidArgumentError(f"s must be > 0, got {s!r}")
    n = int(pool_size)
    b, m = counts.shape
    f = fingerprint(counts)
    repeated = f[:, 2:].sum(1) if f.shape[1] > 2 else torch.zeros(b, dtype=torch.float64)
    known = repeated >= MIN_REPEATED
    n_pmax = n * counts.amax(1).double() / m
    est, reps = _estimate_parts(f, m, n, s, pools, replicates, generator, estimator)
    upper = upper_bound(est, reps, confidence)
    nan = torch.full_like(est, math.nan)
    return BatchTVEstimate(
        estimate=torch.where(known, est, nan),
        upper=torch.where(known, upper, torch.ones_like(upper)),
        known=known,
        n_pmax=n_pmax,
        confidence=float(confidence),
    )


def _estimate_parts(
    f: torch.Tensor,
    m: int,
    n: int,
    s: float,
    pools: int,
    replicates: int,
    generator: torch.Generator | None,
    estimator: str = "binomial",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The plug-in estimate (B,) and its bootstrap replicates (B, replicates)."""
    law = compact(smoothed_law(f))
    est = plugin_tv(law, s, n, pools, generator, estimator)
    if replicates <= 0:
        return est, est.unsqueeze(1)
    rep_pools = max(MIN_REPLICATE_POOLS, round(REPLICATE_POOL_SHARE * pools))
    reps = _replicate_tv(law, m, s, n, rep_pools, replicates, generator, estimator)
    return est, reps.view(f.shape[0], replicates)


def upper_bound(est: torch.Tensor, reps: torch.Tensor, confidence: float) -> torch.Tensor:
    """The bootstrap bound (B,): ``est + t * rms``, at most 1, where rms is the root mean square
    deviation of the R replicates (B, R) from the estimate (their spread and their bias
    together: the bootstrap's estimate of the estimate's own error) and t the one-sided
    ``confidence`` quantile of Student's t with R degrees of freedom (few replicates give a
    noisy rms; the t quantile pays for it). With one replicate equal to the estimate the
    bound is the estimate."""
    r = reps.shape[1]
    rms = ((reps - est.unsqueeze(1)) ** 2).mean(1).sqrt()
    return (est + student_t_quantile(confidence, r) * rms).clamp(max=1.0)


def student_t_quantile(confidence: float, dof: int) -> float:
    """The ``confidence`` quantile of Student's t with ``dof`` degrees of freedom (Cornish-Fisher
    expansion in 1/dof around the normal quantile; within 0.2% of the exact value for dof >= 3,
    4% at dof = 1)."""
    z = float(torch.special.ndtri(torch.tensor(confidence, dtype=torch.float64)))
    v = float(max(dof, 1))
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


def _replicate_tv(
    law: _ClassLaw,
    m: int,
    s: float,
    n: int,
    pools: int,
    replicates: int,
    generator: torch.Generator | None,
    estimator: str = "binomial",
) -> torch.Tensor:
    """The estimator rerun on ``replicates`` samples of m draws from each world: (W * reps,)."""
    rep_law = _ClassLaw(
        mass=law.mass.repeat_interleave(replicates, 0),
        atoms=law.atoms.repeat_interleave(replicates, 0),
    )
    keys, _ = draw_atoms(rep_law, m, generator)
    rep_counts = _pool_counts(keys)
    rep_law = compact(smoothed_law(fingerprint(rep_counts)))
    return plugin_tv(rep_law, s, n, pools, generator, estimator)
