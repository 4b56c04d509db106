"""What ``method="auto"`` chooses on a few settings, and why.

auto draws a small pilot, plans the exact method's collision tree and estimates its cost, and
runs exact when the estimate is at most AUTO_BUDGET_FACTOR x the batch method's draws (no
``max_draws``) or AUTO_EXACT_SHARE x what is left of ``max_draws``; else batch. The choice is
kept: an exact overrun raises DrawBudgetExceeded, and so does a budget neither method fits.
Each row runs ``temperature_sample(method="auto")`` once and reports the method, the pilot
estimate, the true expected cost (``expected_exact_draws``, best tree), the draws spent and the
reason.
"""

from __future__ import annotations

import math

import torch

import implicit_temperature as it

from .common import PEAKED, ZIPF, categorical_draw, core_constants

SPREAD = torch.full((5000,), 1 / 5000, dtype=torch.float64)

# (law name, law, T, N, num_outputs, max_draws)
SETTINGS = (
    ("peaked", PEAKED, 0.5, 200, 10, None),
    ("peaked", PEAKED, 1.0, 200, 10, None),
    ("Zipf(1.1)", ZIPF, 0.5, 200, 10, None),
    ("Zipf(1.1)", ZIPF, 0.25, 200, 10, None),
    ("Zipf(1.1)", ZIPF, 0.25, 200, 10, 1500),
    ("Zipf(1.1)", ZIPF, 0.1, 200, 10, None),
    ("Zipf(1.1)", ZIPF, 0.05, 200, 1, None),
    ("Zipf(1.1)", ZIPF, 2.0, 200, 10, None),
    ("uniform, 5000 outcomes", SPREAD, 0.2, 200, 10, None),
    ("uniform, 5000 outcomes", SPREAD, 0.1, 200, 10, 900),
    ("Zipf(1.1)", ZIPF, 1e-8, 200, 10, None),
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
    return {
        "rows": rows,
        "budget_factor": core_constants()["AUTO_BUDGET_FACTOR"],
        "exact_share": core_constants()["AUTO_EXACT_SHARE"],
    }
