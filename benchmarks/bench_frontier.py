"""The accuracy-cost frontier: draws per output each method needs for TV <= 0.05 and <= 0.02.

Laws: the suite of :mod:`implicit_temperature.demos.law_suite` (peaked ones with 4 to 4096
outcomes, spread ones: Dirichlet over 2,000 and 5,000 outcomes, the flat head, a product of 4
per-token laws as CALM chunks are, ...), at T in {0.5, 0.25, 0.1}.

Methods (each a line of the frontier figure, TV against draws per output):

* exact tree: TV 0 at the best tree's expected cost (``expected_exact_draws``, the planner on the
  true law; a run adds its pilot);
* batch(N), the binomial rule, for N on a doubling grid (N = 200 is the reference rule of the
  published CALM code);
* jackknife(N), ``estimator="jackknife"`` (:mod:`implicit_temperature.core.jackknife`);
* hybrid: exact subtrees at exponent s1 = 2 fill a pool of M i.i.d. P_2 draws (each costs the
  leaf's expected draws), and the jackknifed batch rule at exponent s / s1 picks from it
  (P_2^(s/2) = P_s); only where s >= 4;
* shared pool: one jackknifed pool of N for ``SHARED_OUTPUTS`` outputs of one problem. Each output
  has the marginal law of jackknife(N) at N / SHARED_OUTPUTS draws per output, but the outputs are
  correlated: given the pool they are i.i.d. from the pool's own selection law w, so their
  empirical law tends to w, not to P_T. The table gives E[TV(w, P_T)] next to the marginal TV.

True TV, not sampled outputs: for each setting, ``pools`` pools are simulated from the known law
(P for batch and jackknife, P_2 for the hybrid, whose exact leaves output exactly P_2) and the
exact selection law of each (``selection_probabilities``) is averaged. Outcomes whose
probabilities are within 1% of each other are pooled into one class (within a class the output
probability is the same function of P(x) by symmetry), the class frequency in the pool is a
control variate with a known mean, and the noise column is the TV a perfect method would show with
the same pools (half the TV between the two halves of the pools).
"""

from __future__ import annotations

import math
import time

import torch

import implicit_temperature as it
from implicit_temperature.demos.law_suite import suite
from implicit_temperature.demos.laws import tempered, total_variation, total_variation_rows

TEMPERATURES = (0.5, 0.25, 0.1)
TOLERANCES = (0.05, 0.02)
SIZES = (25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200)
QUICK_SIZES = (50, 200, 800, 3200, 12800)
REFERENCE_N = 200
SHARED_OUTPUTS = 400
HYBRID_S1 = 2.0
ESTIMATORS = ("binomial", "jackknife")
#: laws of the suite in the frontier (all but two of the peaked ones, whose tree is cheap anyway).
LAW_NAMES = (
    "peaked-4",
    "zipf-30",
    "tokens 8^4 (peaked)",
    "geometric-20",
    "dirichlet-2000 (0.1)",
    "dirichlet-5000 (0.05)",
    "flat-head",
    "tokens 16^4",
    "uniform-ish 1000",
    "zipf-5000 (1.0)",
)
QUICK_LAWS = ("peaked-4", "dirichlet-2000 (0.1)", "flat-head")
#: simulated draws per (law, T, method, N) point, full and quick.
POINT_DRAWS = 1 << 18
QUICK_POINT_DRAWS = 1 << 17
#: a curve stops once two consecutive points are below this TV (nothing left to learn).
STOP_TV = 0.004
_CHUNK = 1 << 20  # simulated draws per selection_probabilities call
#: the tree overspend runs (item 5 of the accuracy issue): law, T, outputs, (plan, seed) pairs.
TREE_LAW = "dirichlet-2000 (0.1)"
TREE_T = 0.25
TREE_OUTPUTS = 400
TREE_RUNS = (("pilot (auto)", 0), ("explicit", 0))


def classes(p: torch.Tensor, resolution: float = 0.01) -> tuple[torch.Tensor, int]:
    """Class id per outcome (K,) (probabilities within ``resolution`` share a class), count."""
    code = torch.floor(torch.log(p.clamp(min=1e-300)) / math.log1p(resolution)).long()
    _, cls = torch.unique(code, return_inverse=True)
    return cls, int(cls.max()) + 1


def output_law(
    pool_law: torch.Tensor,
    cls: torch.Tensor,
    n_cls: int,
    s_top: float,
    size: int,
    pools: int,
    estimator: str,
    gen: torch.Generator,
) -> tuple[torch.Tensor, float]:
    """The rule's output law per class (C,) for pools of ``size`` i.i.d. ``pool_law`` draws,
    selected at exponent ``s_top``, and its noise (half the TV between the halves of the pools)."""
    cdf = torch.cumsum(pool_law, 0)
    cdf[-1] = 1.0
    mean_f = torch.zeros(n_cls, dtype=torch.float64).scatter_add_(0, cls, pool_law)
    per = max(1, _CHUNK // size)
    halves = []
    for half in (pools // 2, pools - pools // 2):
        acc = {k: torch.zeros(n_cls, dtype=torch.float64) for k in ("w", "f", "ww", "ff", "wf")}
        done = 0
        while done < half:
            b = min(per, half - done)
            u = torch.rand(b * size, dtype=torch.float64, generator=gen)
            keys = torch.searchsorted(cdf, u, right=True).clamp_(max=pool_law.numel() - 1)
            keys = keys.view(b, size)
            probs = it.selection_probabilities(keys, 1.0 / s_top, estimator=estimator)
            c = cls[keys]
            w = torch.zeros(b, n_cls, dtype=torch.float64).scatter_add_(1, c, probs)
            f = torch.zeros(b, n_cls, dtype=torch.float64).scatter_add_(
                1, c, torch.full_like(probs, 1.0 / size)
            )
            for k, v in (("w", w), ("f", f), ("ww", w * w), ("ff", f * f), ("wf", w * f)):
                acc[k] += v.sum(0)
            done += b
        m = max(half, 1)
        mw, mf = acc["w"] / m, acc["f"] / m
        var_f, cov = acc["ff"] / m - mf**2, acc["wf"] / m - mw * mf
        beta = torch.where(var_f > 0, cov / var_f.clamp(min=1e-300), torch.zeros_like(cov))
        halves.append(mw - beta * (mf - mean_f))
    q = 0.5 * (halves[0] + halves[1])
    return q, 0.25 * float((halves[0] - halves[1]).abs().sum())


def conditional_tv(p: torch.Tensor, s: float, size: int, pools: int, gen) -> float:
    """E over pools of TV(w, P_s), w the jackknifed pool's own selection law (per outcome)."""
    target = tempered(p, 1.0 / s)
    cdf = torch.cumsum(p, 0)
    cdf[-1] = 1.0
    total, per = 0.0, max(1, min(_CHUNK // size, (1 << 22) // p.numel()))
    done = 0
    while done < pools:
        b = min(per, pools - done)
        u = torch.rand(b * size, dtype=torch.float64, generator=gen)
        keys = torch.searchsorted(cdf, u, right=True).clamp_(max=p.numel() - 1).view(b, size)
        probs = it.selection_probabilities(keys, 1.0 / s, estimator="jackknife")
        w = torch.zeros(b, p.numel(), dtype=torch.float64).scatter_add_(1, keys, probs)
        total += float(total_variation_rows(w, target).sum())
        done += b
    return total / pools


def curve(
    p, cls, n_cls, s, pool_law, s_top, unit_cost, estimator, sizes, budget, gen
) -> list[dict]:
    """TV against draws per output for one method: points (size, draws, tv, noise)."""
    target = torch.zeros(n_cls, dtype=torch.float64).scatter_add_(0, cls, tempered(p, 1.0 / s))
    points: list[dict] = []
    below = 0
    for size in sizes:
        pools = max(64, budget // size)
        q, noise = output_law(pool_law, cls, n_cls, s_top, size, pools, estimator, gen)
        tv = total_variation(q, target)
        points.append({"size": size, "draws": size * unit_cost, "tv": tv, "noise": noise})
        below = below + 1 if tv < STOP_TV else 0
        if below >= 2:
            break
    return points


def draws_for(points: list[dict], tol: float) -> float:
    """Draws per output at which the curve first reaches TV <= tol (log-log interpolation
    between the grid points around the crossing); inf when it never does on the grid."""
    prev = None
    for pt in points:
        if pt["tv"] <= tol:
            if prev is None or prev["tv"] <= 0 or pt["tv"] <= 0:
                return float(pt["draws"])
            x0, x1 = math.log(prev["draws"]), math.log(pt["draws"])
            y0, y1 = math.log(prev["tv"]), math.log(max(pt["tv"], 1e-12))
            frac = (math.log(tol) - y0) / (y1 - y0) if y1 != y0 else 1.0
            return float(math.exp(x0 + frac * (x1 - x0)))
        prev = pt
    return math.inf


def _setting(law, t: float, quick: bool, seed: int) -> dict:
    p = law.probs
    s = 1.0 / t
    cls, n_cls = classes(p)
    sizes = QUICK_SIZES if quick else SIZES
    budget = QUICK_POINT_DRAWS if quick else POINT_DRAWS
    gen = torch.Generator().manual_seed(seed)
    curves = {}
    for est in ESTIMATORS:
        curves[est] = curve(p, cls, n_cls, s, p, s, 1.0, est, sizes, budget, gen)
    if s >= 2 * HYBRID_S1 - 1e-9:
        leaf_cost = it.expected_exact_draws(p, 1.0 / HYBRID_S1)
        pool_law = tempered(p, 1.0 / HYBRID_S1)
        hybrid_sizes = tuple(m for m in sizes if m <= 3200)
        curves["hybrid"] = curve(
            p,
            cls,
            n_cls,
            s,
            pool_law,
            s / HYBRID_S1,
            leaf_cost,
            "jackknife",
            hybrid_sizes,
            budget,
            gen,
        )
    exact = it.expected_exact_draws(p, t)
    row = {"law": law.name, "K": int((p > 0).sum()), "T": t, "exact": exact, "curves": curves}
    ref = next(pt for pt in curves["binomial"] if pt["size"] == REFERENCE_N)
    row["reference_tv"], row["reference_noise"] = ref["tv"], ref["noise"]
    need = {}
    for tol in TOLERANCES:
        need[tol] = {"exact": exact}
        for name, pts in curves.items():
            need[tol][name] = draws_for(pts, tol)
        jack = need[tol]["jackknife"]
        need[tol]["shared"] = jack / SHARED_OUTPUTS
    row["need"] = need
    n_shared = need[0.02]["jackknife"]
    if math.isfinite(n_shared):
        size = max(2, int(math.ceil(n_shared)))
        row["shared_size"] = size
        row["shared_conditional_tv"] = conditional_tv(p, s, size, 16 if quick else 64, gen)
    return row


def tree_overspend(quick: bool) -> dict:
    """Draws of real tree runs over the best tree's expectation, on a 2,000-outcome law at
    T = 0.25 (the plan from the default pilot, and the same plan given explicitly)."""
    law = next(x for x in suite() if x.name == TREE_LAW)
    p = law.probs
    best = it.expected_exact_draws(p, TREE_T)
    plan = it.core.expected_exact_cost(p, TREE_T).plan
    outputs = 20 if quick else TREE_OUTPUTS
    draw = law.draw()
    runs = []
    for how, seed in (("pilot (auto)", 0),) if quick else TREE_RUNS:
        kw = {} if how.startswith("pilot") else {"plan": plan}
        res = it.temperature_sample(
            draw, TREE_T, method="exact", num_outputs=outputs, generator=seed, **kw
        )
        spent = res.draws - (res.pilot_draws or 0)
        runs.append(
            {
                "how": how,
                "seed": seed,
                "ratio": spent / (outputs * best),
                "pairs": res.extra.get("pairs"),
                "kept": res.extra.get("kept_pairs"),
                "plan": res.plan,
            }
        )
    return {
        "law": law.name,
        "T": TREE_T,
        "outputs": outputs,
        "best": best,
        "plan": plan,
        "runs": runs,
    }


def run(quick: bool) -> dict:
    """Frontier rows for every law and temperature, the tree overspend runs, the runtime."""
    start = time.perf_counter()
    laws = {law.name: law for law in suite()}
    names = QUICK_LAWS if quick else LAW_NAMES
    rows = []
    for li, name in enumerate(names):
        for ti, t in enumerate(TEMPERATURES):
            rows.append(_setting(laws[name], t, quick, 1000 * li + ti))
    tree = tree_overspend(quick)
    return {
        "tree": tree,
        "rows": rows,
        "seconds": time.perf_counter() - start,
        "tolerances": TOLERANCES,
        "shared_outputs": SHARED_OUTPUTS,
        "hybrid_s1": HYBRID_S1,
        "quick": quick,
    }
