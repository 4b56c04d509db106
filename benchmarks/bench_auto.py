"""What ``method="auto"`` chooses on a few settings, and why.

auto draws a pilot batch of N, estimates the exact sampler's cost from it, and runs exact when
the estimate fits ``max_draws`` (default: AUTO_BUDGET_FACTOR x N draws per output) beside the
batch method's reserve, else batch; it raises DrawBudgetExceeded when neither fits.
Each row runs ``temperature_sample(method="auto")`` once and reports the method, the pilot
estimate, the true expected cost (``expected_exact_draws``), the draws spent and the reason.
"""

from __future__ import annotations

import math

import implicit_temperature as it

from .common import PEAKED, ZIPF, categorical_draw

# (law name, law, T, N, num_outputs, max_draws)
SETTINGS = (
    ("peaked", PEAKED, 0.5, 200, 10, None),
    ("peaked", PEAKED, 1.0, 200, 10, None),
    ("Zipf(1.1)", ZIPF, 0.5, 200, 10, None),
    ("Zipf(1.1)", ZIPF, 0.25, 200, 10, None),
    ("Zipf(1.1)", ZIPF, 0.25, 200, 10, 2500),
    ("Zipf(1.1)", ZIPF, 0.25, 200, 10, 1000),
    ("Zipf(1.1)", ZIPF, 0.1, 200, 10, None),
    ("Zipf(1.1)", ZIPF, 2.0, 200, 10, None),
)


def run(quick: bool) -> dict:
    """One auto run per setting (cheap; the same in quick and full mode)."""
    rows = []
    for i, (name, p, t, n, q, budget) in enumerate(SETTINGS):
        try:
            res = it.temperature_sample(
                categorical_draw(p),
                t,
                method="auto",
                num_samples=n,
                num_outputs=q,
                max_draws=budget,
                generator=100 + i,
            )
            method, estimate, draws, reason = res.method, res.expected_draws, res.draws, res.reason
        except it.DrawBudgetExceeded as exc:  # auto refuses when neither method fits max_draws
            method, estimate, draws = "DrawBudgetExceeded", math.nan, exc.stats["draws"]
            reason = str(exc).split(";")[0]
        true_cost = it.expected_exact_draws(p, t) * q if t <= 1.0 else math.inf
        rows.append(
            {
                "law": name,
                "T": t,
                "N": n,
                "outputs": q,
                "max_draws": "default" if budget is None else budget,
                "method": method,
                "pilot_estimate": estimate,
                "true_expected": true_cost,
                "draws": draws,
                "reason": reason or "",
            }
        )
    return {"rows": rows, "budget_factor": it.core.api.AUTO_BUDGET_FACTOR}
