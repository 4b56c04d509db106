"""Exact sampler cost: flat rounds against their formula, collision trees against the best tree.

With s = 1/T = n + a and S(r) = sum_x P(x)^r, Z_T = S(s):

* flat rounds (``plan="flat"``): expected draws per output
  [1 + S(1) + ... + S(n-1) + S(s-1)[a > 0]] / Z_T (``expected_exact_draws(p, T, plan="flat")``);
* collision trees: c(a+b) = (c(a) + c(b)) S(a) S(b) / S(a+b), the best tree found by the planner
  on the true law (``expected_exact_draws(p, T)``).

Measured, on known categorical laws:

* flat rounds, T in {0.9, 0.8, 0.5, 0.37, 0.25}: ``temperature_sample(method="exact",
  plan="flat", num_outputs=Q)`` (lanes on), R independent replicates; draws per output (mean and
  standard error), draw calls and wall time per output; the latency of one output with the
  default lanes and with ``max_lanes=1`` (the sequential baseline);
* trees, T from 0.8 down to 0.05 on Zipf(1.1, 30 outcomes) and a 500-outcome law with a
  geometric head and a power tail: ``temperature_sample(method="exact", num_outputs=1000)``
  (``plan="auto"``: the pilot plans the tree; its draws are counted) against the best tree, the
  flat rounds and the batch method's N = 200 draws per output; and single outputs
  (``num_outputs=1``, pilot included).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter

import torch

import implicit_temperature as it

from .common import LAWS, ZIPF, categorical_draw

TEMPERATURES = (0.9, 0.8, 0.5, 0.37, 0.25)
#: settings for draws per output against num_outputs (the lane controller's warm-up overhead)
OUTPUT_SCALING = (("peaked [.5, .3, .15, .05]", 0.37), ("Zipf(1.1), 30 outcomes", 0.25))
TREE_TEMPERATURES = (0.8, 0.5, 0.37, 0.25, 0.2, 0.1, 0.05)
SINGLE_TEMPERATURES = (0.25, 0.1)
BATCH_N = 200


def geometric_tail_law() -> torch.Tensor:
    """500 outcomes: 70% of the mass on 20 outcomes with geometric weights 0.7^k, 30% on 480
    outcomes with weights 1/j (a power tail)."""
    k = torch.arange(500, dtype=torch.float64)
    head = torch.where(k < 20, 0.7**k, torch.zeros_like(k))
    tail = torch.where(k >= 20, 1.0 / (k - 19).clamp(min=1), torch.zeros_like(k))
    return 0.7 * head / head.sum() + 0.3 * tail / tail.sum()


TREE_LAWS = {
    "Zipf(1.1), 30 outcomes": ZIPF,
    "geometric head + power tail, 500 outcomes": geometric_tail_law(),
}


def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, se


def _single_outputs(draw, t: float, repeats: int, lanes: int, seed: int) -> dict:
    calls, draws, secs = [], [], []
    for r in range(repeats):
        start = time.perf_counter()
        res = it.temperature_sample(
            draw,
            t,
            method="exact",
            plan="flat",
            num_outputs=1,
            generator=seed + r,
            max_lanes=lanes,
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
                    draw, t, method="exact", plan="flat", num_outputs=outputs, generator=seed + r
                )
                secs.append((time.perf_counter() - start) / outputs)
                per_output.append(res.draws / outputs)
                calls.append(res.model_calls / outputs)
                rounds += res.rounds
                abandoned += res.abandoned_rounds
            mean, se = _mean_se(per_output)
            formula = it.expected_exact_draws(p, t, plan="flat")
            lanes = _single_outputs(draw, t, single, it.core.exact.DEFAULT_MAX_LANES, seed + 50)
            seq = _single_outputs(draw, t, single, 1, seed + 50)
            rows.append(
                {
                    "law": law_name,
                    "T": t,
                    "formula": formula,
                    "draws_per_output": mean,
                    "draws_se": se,
                    "ratio": mean / formula,
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
        formula = it.expected_exact_draws(p, t, plan="flat")
        for q in sizes:
            runs = max(5, (10 if quick else 200) // q)
            per_output = [
                it.temperature_sample(
                    draw, t, method="exact", plan="flat", num_outputs=q, generator=7000 + r
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
        "trees": _trees(quick),
        "single": _single_tree_outputs(quick),
        "replicates": replicates,
        "outputs": outputs,
        "single_repeats": single,
        "max_lanes": it.core.exact.DEFAULT_MAX_LANES,
    }


def _trees(quick: bool) -> dict:
    """plan="auto" (pilot included) against the best tree, flat rounds and batch N = 200."""
    replicates, outputs = (1, 200) if quick else (3, 1000)
    rows = []
    for li, (law_name, p) in enumerate(TREE_LAWS.items()):
        draw = categorical_draw(p)
        for ti, t in enumerate(TREE_TEMPERATURES):
            best = it.core.expected_exact_cost(p, t)
            flat = it.expected_exact_draws(p, t, plan="flat")
            per_output, pilots, plans, secs = [], [], Counter(), []
            for r in range(replicates):
                start = time.perf_counter()
                res = it.temperature_sample(
                    draw,
                    t,
                    method="exact",
                    num_outputs=outputs,
                    generator=50_000 + 1000 * li + 10 * ti + r,
                )
                secs.append((time.perf_counter() - start) / outputs)
                per_output.append(res.draws / outputs)
                pilots.append(res.pilot_draws)
                plans[res.plan] += 1
            mean, se = _mean_se(per_output)
            rows.append(
                {
                    "law": law_name,
                    "T": t,
                    "flat": flat,
                    "best_tree": best.draws_per_output,
                    "best_plan": best.plan,
                    "measured": mean,
                    "measured_se": se,
                    "plan": plans.most_common(1)[0][0],
                    "pilot": statistics.fmean(pilots),
                    "ratio_best": mean / best.draws_per_output,
                    "ratio_flat": mean / flat,
                    "batch": BATCH_N,
                    "seconds_per_output": statistics.fmean(secs),
                }
            )
    return {"rows": rows, "replicates": replicates, "outputs": outputs}


def _single_tree_outputs(quick: bool) -> dict:
    """num_outputs=1 with plan="auto": draws per call (pilot included) against the best tree."""
    runs = 10 if quick else 100
    draw = categorical_draw(ZIPF)
    rows = []
    for t in SINGLE_TEMPERATURES:
        draws, pilots = [], []
        for r in range(runs):
            res = it.temperature_sample(draw, t, method="exact", num_outputs=1, generator=9000 + r)
            draws.append(res.draws)
            pilots.append(res.pilot_draws)
        mean, se = _mean_se(draws)
        best = it.expected_exact_draws(ZIPF, t)
        rows.append(
            {
                "law": "Zipf(1.1), 30 outcomes",
                "T": t,
                "runs": runs,
                "draws": mean,
                "draws_se": se,
                "pilot": statistics.fmean(pilots),
                "best_tree": best,
                "ratio_best": mean / best,
            }
        )
    return {"rows": rows}


def calm_exact(quick: bool = False, temperatures: tuple[float, ...] = (0.25, 0.1)) -> dict:
    """CALM decoding (the shipped demo model): draws per chunk and tokens/s of exact
    (``plan="auto"``, pilot included), auto (the default) and batch N = 200, per temperature.

    Run: ``python -m benchmarks.bench_exact --calm [--quick]``.
    """
    from implicit_temperature.adapters.calm import generate
    from implicit_temperature.demos.calm import load_demo_model

    model, tok = load_demo_model()
    batch_size, new_tokens = (8, 16) if quick else (32, 64)
    prompts = ["cat ", "dog ", "owl ", "fox "]
    ids = torch.cat([tok.encode(prompts[i % 4]) for i in range(batch_size)])
    rows = []
    for t in temperatures:
        for method in ("exact", "auto", "batch"):
            start = time.perf_counter()
            out = generate(
                model,
                ids,
                temperature=t,
                method=method,
                num_samples=BATCH_N,
                max_new_tokens=new_tokens,
                generator=0,
                return_dict_in_generate=True,
            )
            seconds = time.perf_counter() - start
            tokens = batch_size * (out.sequences.shape[1] - ids.shape[1])
            rows.append(
                {
                    "T": t,
                    "method": method,
                    "draws_per_chunk": out.draws / (batch_size * out.steps),
                    "tokens_per_s": tokens / seconds,
                    "seconds": seconds,
                }
            )
    return {
        "batch_size": batch_size,
        "new_tokens_per_prompt": new_tokens,
        "device": str(next(model.parameters()).device),
        "rows": rows,
    }


if __name__ == "__main__":
    import json
    import sys

    if "--calm" in sys.argv:
        print(json.dumps(calm_exact(quick="--quick" in sys.argv), indent=2))
