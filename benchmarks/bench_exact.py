"""Exact sampler cost: draws per output against the expectation formula, and latency.

Two formulas for the expected base draws per output (s = 1/T = n + a, S(r) = sum_x P(x)^r,
Z_T = S(s)):

* corrected (``implicit_temperature.expected_exact_draws``, see ``core/cost.py``):
  [1 + S(1) + ... + S(n-1) + S(s-1)[a > 0]] / Z_T — the collision stage draws its k-th sample
  iff the first k-1 agreed, and the draw that ends a round at its first mismatch is counted;
* DESIGN §2 as written: [S(1) + ... + S(n) + S(s-1)[a > 0]] / Z_T — it leaves that draw out.
  The two agree for n = 1 (T > 1/2) and differ below.

Measured, on two known categorical laws and T in {0.9, 0.8, 0.5, 0.37, 0.25}:

* throughput: ``temperature_sample(method="exact", num_outputs=Q)`` (lanes on, the default),
  R independent replicates; draws per output (mean and its standard error over replicates),
  draw calls per output and wall time per output;
* latency of one output: ``num_outputs=1`` repeated L times with the default lanes and with
  ``max_lanes=1`` (the sequential baseline: one round at a time, one draw per call); mean
  sequential draw calls, draws and wall time per output. With ``max_lanes=1`` the draw count is
  an unbiased measurement of the formula.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

import implicit_temperature as it

from .common import LAWS, categorical_draw

TEMPERATURES = (0.9, 0.8, 0.5, 0.37, 0.25)
#: settings for draws per output against num_outputs (the lane controller's warm-up overhead)
OUTPUT_SCALING = (("peaked [.5, .3, .15, .05]", 0.37), ("Zipf(1.1), 30 outcomes", 0.25))


def design_formula(p: torch.Tensor, temperature: float) -> float:
    """DESIGN §2's expression, [S(1) + ... + S(n) + S(s-1)[a>0]] / Z_T, as written there."""
    s = 1.0 / temperature
    if abs(s - round(s)) < 1e-9:
        s = float(round(s))
    n = int(math.floor(s))
    a = s - n
    p = p.double()

    def power_sum(r: float) -> float:
        return float((p**r).sum())

    per_round = sum(power_sum(j) for j in range(1, n + 1))
    if a > 0:
        per_round += power_sum(s - 1.0)
    return per_round / power_sum(s)


def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, se


def _single_outputs(draw, t: float, repeats: int, lanes: int, seed: int) -> dict:
    calls, draws, secs = [], [], []
    for r in range(repeats):
        start = time.perf_counter()
        res = it.temperature_sample(
            draw, t, method="exact", num_outputs=1, generator=seed + r, max_lanes=lanes
        )
        secs.append(time.perf_counter() - start)
        calls.append(res.model_calls)
        draws.append(res.draws)
    draws_mean, draws_se = _mean_se(draws)
    return {
        "calls": statistics.fmean(calls),
        "draws": draws_mean,
        "draws_se": draws_se,
        "seconds": statistics.fmean(secs),
    }


def run(quick: bool) -> dict:
    """Measure cost and latency; returns ``{"rows": [...], "settings": {...}}``."""
    if quick:
        replicates, outputs, single = 2, 100, 5
    else:
        replicates, outputs, single = 5, 1000, 100
    rows = []
    for li, (law_name, p) in enumerate(LAWS.items()):
        draw = categorical_draw(p)
        for ti, t in enumerate(TEMPERATURES):
            seed = 1000 * li + 100 * ti
            per_output, calls, secs = [], [], []
            rounds = abandoned = 0
            for r in range(replicates):
                start = time.perf_counter()
                res = it.temperature_sample(
                    draw, t, method="exact", num_outputs=outputs, generator=seed + r
                )
                secs.append((time.perf_counter() - start) / outputs)
                per_output.append(res.draws / outputs)
                calls.append(res.model_calls / outputs)
                rounds += res.rounds
                abandoned += res.abandoned_rounds
            mean, se = _mean_se(per_output)
            formula = it.expected_exact_draws(p, t)
            lanes = _single_outputs(draw, t, single, it.core.exact.DEFAULT_MAX_LANES, seed + 50)
            seq = _single_outputs(draw, t, single, 1, seed + 50)
            rows.append(
                {
                    "law": law_name,
                    "T": t,
                    "formula": formula,
                    "design_formula": design_formula(p, t),
                    "draws_per_output": mean,
                    "draws_se": se,
                    "ratio": mean / formula,
                    "ratio_design": mean / design_formula(p, t),
                    "abandoned_fraction": abandoned / rounds,
                    "calls_per_output": statistics.fmean(calls),
                    "seconds_per_output": statistics.fmean(secs),
                    "single_lanes": lanes,
                    "single_sequential": seq,
                    "seq_ratio": seq["draws"] / formula,
                }
            )
    scaling = []
    sizes = (1, 10) if quick else (1, 10, 100, 1000)
    for law_name, t in OUTPUT_SCALING:
        p = LAWS[law_name]
        draw = categorical_draw(p)
        formula = it.expected_exact_draws(p, t)
        for q in sizes:
            runs = max(5, (10 if quick else 200) // q)
            per_output = [
                it.temperature_sample(
                    draw, t, method="exact", num_outputs=q, generator=7000 + r
                ).draws
                / q
                for r in range(runs)
            ]
            mean, se = _mean_se(per_output)
            scaling.append(
                {
                    "law": law_name,
                    "T": t,
                    "num_outputs": q,
                    "runs": runs,
                    "draws_per_output": mean,
                    "draws_se": se,
                    "ratio": mean / formula,
                }
            )
    return {
        "rows": rows,
        "scaling": scaling,
        "replicates": replicates,
        "outputs": outputs,
        "single_repeats": single,
        "max_lanes": it.core.exact.DEFAULT_MAX_LANES,
    }
