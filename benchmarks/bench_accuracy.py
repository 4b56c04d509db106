"""Accuracy of the batch method: total-variation distance of its output law to P^(1/T).

How the TV is computed (no counting of outputs): for M independent batches of N draws from a
known law P, ``selection_probabilities(keys, T)`` gives the exact probability that the method
picks each sample of each batch. Scatter-adding those per outcome gives w_b(x), the exact law of
the output given batch b; the method's output law is q(x) = E_b[w_b(x)], estimated over the M
batches with the batch frequency c_b(x)/N (whose mean P(x) is known) as a control variate. We
report TV(q, P_T) = 0.5 * sum_x |q(x) - P_T(x)| and the Monte Carlo noise of that estimate,
0.5 * sum_x SE_x * sqrt(2/pi) with SE_x the standard error of q(x): the TV a perfect method
would show with the same M (TVs near it are "at the noise floor").

Three rules: ours (generalised binomial C(c, 1/T) with the cascade), the plug-in (c/N)^(1/T)
(``estimator="plugin"``), and at T = 1/n the published rule (weights math.comb(c, n), cascade
n, ..., 1), which is ours by construction; :func:`published_outcome_law` restates it with
``math.comb`` and the section reports the largest difference to ours per outcome.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from implicit_temperature import selection_probabilities
from implicit_temperature.demos.laws import tempered, total_variation

from .common import LAWS, categorical_draw

TEMPERATURES = (0.25, 0.5, 0.8, 1.5, 2.0)
SIZES = (16, 64, 200, 1000)
ESTIMATORS = ("binomial", "plugin")
_CHUNK = 1_000_000  # keys per selection_probabilities call (bounds memory)


def published_outcome_law(row: list[int], temperature: float, k: int) -> list[float]:
    """The published rule's exact probability of choosing each outcome 0..k-1, for one batch."""
    n_initial = round(1.0 / temperature)
    counts = Counter(row)
    for n in range(n_initial, 0, -1):
        weights = {x: math.comb(c, n) for x, c in counts.items() if c >= n}
        if weights:
            total = sum(weights.values())
            return [weights.get(x, 0) / total for x in range(k)]
    raise AssertionError("unreachable")


def output_law(
    keys: torch.Tensor, p: torch.Tensor, temperature: float, estimator: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimate q(x) = E_b[w_b(x)] and its standard error: float64 (k,), (k,). keys: (M, N) ids.

    Control variate: the batch frequency f_b(x) = c_b(x) / N has the known mean P(x) and moves
    with w_b(x), so q(x) = mean(w) - beta_x (mean(f) - P(x)) with beta_x = cov(w, f) / var(f)
    is unbiased up to O(1/M) and much less noisy than mean(w) alone.
    """
    m, size = keys.shape
    k = p.numel()
    per_chunk = max(1, _CHUNK // size)
    sums = {name: torch.zeros(k, dtype=torch.float64) for name in ("w", "f", "ww", "ff", "wf")}
    for start in range(0, m, per_chunk):
        chunk = keys[start : start + per_chunk]
        probs = selection_probabilities(chunk, temperature, estimator=estimator)
        w = torch.zeros(chunk.shape[0], k, dtype=torch.float64).scatter_add_(1, chunk, probs)
        f = torch.zeros_like(w).scatter_add_(1, chunk, torch.full_like(probs, 1.0 / size))
        sums["w"] += w.sum(0)
        sums["f"] += f.sum(0)
        sums["ww"] += (w * w).sum(0)
        sums["ff"] += (f * f).sum(0)
        sums["wf"] += (w * f).sum(0)
    mean_w, mean_f = sums["w"] / m, sums["f"] / m
    var_w = sums["ww"] / m - mean_w**2
    var_f = sums["ff"] / m - mean_f**2
    cov = sums["wf"] / m - mean_w * mean_f
    beta = torch.where(var_f > 0, cov / var_f.clamp(min=1e-300), torch.zeros_like(cov))
    q = mean_w - beta * (mean_f - p.double())
    resid_var = (var_w - 2 * beta * cov + beta**2 * var_f).clamp(min=0.0) * m / max(m - 1, 1)
    return q, (resid_var / m).sqrt()


def _batches(size: int, quick: bool) -> int:
    budget = 64_000 if quick else 4_000_000  # draws per (law, N)
    return max(200 if quick else 4000, budget // size)


def run(quick: bool) -> dict:
    """TV table for every law, T, N and rule; plus the published-rule identity check."""
    rows, identity = [], []
    for li, (law_name, p) in enumerate(LAWS.items()):
        k = p.numel()
        draw = categorical_draw(p)
        for size in SIZES:
            m = _batches(size, quick)
            g = torch.Generator().manual_seed(10_000 * li + size)
            keys = draw(m * size, generator=g).view(m, size)
            for t in TEMPERATURES:
                target = tempered(p, t)
                row = {"law": law_name, "T": t, "N": size, "batches": m}
                for est in ESTIMATORS:
                    q, se = output_law(keys, p, t, est)
                    row[f"tv_{est}"] = total_variation(q, target)
                    row[f"noise_{est}"] = 0.5 * math.sqrt(2.0 / math.pi) * float(se.sum())
                row["published_is_ours"] = abs(1.0 / t - round(1.0 / t)) < 1e-9
                rows.append(row)
                if row["published_is_ours"]:
                    sub = keys[:200]
                    ours = torch.zeros(sub.shape[0], k, dtype=torch.float64).scatter_add_(
                        1, sub, selection_probabilities(sub, t)
                    )
                    theirs = torch.tensor(
                        [published_outcome_law(r, t, k) for r in sub.tolist()],
                        dtype=torch.float64,
                    )
                    identity.append(
                        {
                            "law": law_name,
                            "T": t,
                            "N": size,
                            "batches": sub.shape[0],
                            "max_abs_diff": float((ours - theirs).abs().max()),
                        }
                    )
    return {"rows": rows, "identity": identity}
