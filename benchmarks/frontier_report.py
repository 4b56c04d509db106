"""The frontier section of docs/benchmarks.md and its figures (one PNG per law)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from implicit_temperature.demos.law_suite import suite  # noqa: E402

from .report import fmt, table  # noqa: E402

METHOD_LABELS = {
    "exact": "exact tree",
    "binomial": "batch(N)",
    "jackknife": "jackknife(N)",
    "hybrid": "hybrid (P_2 pool)",
    "shared": "shared jackknife pool",
}


def save(res: dict, path: Path) -> None:
    """The section's raw results as JSON beside the figures (re-render without rerunning)."""
    path.write_text(json.dumps(res, default=float, indent=1), encoding="utf-8")


def load(path: Path) -> dict:
    res = json.loads(path.read_text(encoding="utf-8"))
    for row in res["rows"]:  # JSON keys are strings: tolerances back to floats
        row["need"] = {float(k): v for k, v in row["need"].items()}
    return res


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_").lower()


def frontier_figures(res: dict, fig_dir: Path) -> dict[str, str]:
    """One figure per law: TV against draws per output (log-log), a panel per T, a line per
    method; the exact tree is a vertical line at its expected cost (its TV is 0)."""
    paths: dict[str, str] = {}
    laws = list(dict.fromkeys(r["law"] for r in res["rows"]))
    q = res["shared_outputs"]
    for law in laws:
        rows = [r for r in res["rows"] if r["law"] == law]
        fig, axes = plt.subplots(1, len(rows), figsize=(4.6 * len(rows), 3.8), squeeze=False)
        for ax, row in zip(axes[0], rows, strict=True):
            for i, (name, pts) in enumerate(row["curves"].items()):
                xs = [p["draws"] for p in pts]
                ys = [max(p["tv"], 1e-4) for p in pts]
                ax.plot(xs, ys, "o-", ms=3, color=f"C{i}", label=METHOD_LABELS[name])
                if name == "jackknife":
                    ax.plot(
                        [x / q for x in xs], ys, ":", color=f"C{i}", label=f"shared, {q} outputs"
                    )
            ax.axvline(row["exact"], color="k", ls="--", lw=1, label="exact tree (TV 0)")
            for tol in res["tolerances"]:
                ax.axhline(tol, color="grey", lw=0.6)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("draws per output")
            ax.set_ylabel("TV to P^(1/T)")
            ax.set_title(f"{law}, T = {row['T']:g}", fontsize=9)
        axes[0][-1].legend(fontsize=7)  # the last panel (lowest T) has every method
        fig.tight_layout()
        name = f"frontier_{_slug(law)}.png"
        fig.savefig(fig_dir / name, dpi=90)
        plt.close(fig)
        paths[law] = f"figures/{name}"
    return paths


def _need(row: dict, tol: float, method: str) -> str:
    """Draws per output for ``tol``; "<= x" when the smallest grid point already meets it."""
    value = row["need"][tol].get(method)
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "not on grid"
    curve = row["curves"].get("jackknife" if method == "shared" else method)
    if curve:
        first = curve[0]["draws"] / (row["shared_outputs"] if method == "shared" else 1)
        if curve[0]["tv"] <= tol and math.isclose(value, first):
            return "<= " + fmt(float(value))
    return fmt(float(value))


def frontier_section(res: dict, figures: dict[str, str] | None) -> str:
    tols = res["tolerances"]
    q = res["shared_outputs"]
    methods = ("exact", "binomial", "jackknife", "hybrid", "shared")
    headers = ["law", "K", "T", "batch N=200 TV"] + [METHOD_LABELS[m] for m in methods]
    tables = []
    for tol in tols:
        rows = [
            [r["law"], r["K"], f"{r['T']:g}", r["reference_tv"]]
            + [_need({**r, "shared_outputs": q}, tol, m) for m in methods]
            for r in res["rows"]
        ]
        tables.append(f"Draws per output for TV <= {tol:g}:\n\n" + table(headers, rows))
    ratio_rows = []
    for r in res["rows"]:
        need = r["need"][0.02]
        best_batch = need["binomial"]
        jack = need["jackknife"]
        ratio_rows.append(
            [
                r["law"],
                f"{r['T']:g}",
                fmt(r["exact"] / jack) if math.isfinite(jack) else "—",
                fmt(best_batch / jack)
                if math.isfinite(jack) and math.isfinite(best_batch)
                else "—",
                r.get("shared_size", "—"),
                r.get("shared_conditional_tv", "—"),
            ]
        )
    parts = [
        "## Accuracy-cost frontier (spread laws)",
        "Draws per output each method needs for TV to P^(1/T) at most "
        + " and ".join(f"{t:g}" for t in tols)
        + " (`benchmarks/bench_frontier.py`): the exact tree's expected cost (the planner's best "
        "tree on the true law; TV 0), the batch rule with N on a doubling grid, the jackknifed "
        'rule (`estimator="jackknife"`), the hybrid (exact leaves at exponent 2 fill a pool of '
        "P_2 draws, the jackknifed rule picks at exponent s/2), and one shared jackknifed pool "
        f"for {q} outputs of one problem (marginal law of jackknife(N) at N / {q} draws per "
        "output). True TVs come from simulated pools' exact selection laws, not from sampled "
        "outputs; draws for a tolerance are interpolated (log-log) between the grid points "
        "around the crossing, and 'not on grid' means the largest N tried did not reach it. "
        f"Section time: {res['seconds']:.0f} s ({'quick' if res['quick'] else 'full'} grid).",
        *tables,
        "Savings at TV <= 0.02 and the price of sharing a pool: the exact tree's cost and the "
        "batch rule's N over the jackknife's N; then the shared pool's size and E[TV(w, P_T)], "
        "the distance of that pool's own selection law w from P_T. Given the pool the shared "
        "outputs are i.i.d. from w, so many outputs of one problem look like a sample of w, "
        "not of P_T: each output is right on average, the set of outputs is not.",
        table(
            [
                "law",
                "T",
                "exact / jackknife",
                "batch / jackknife",
                "shared pool N",
                "E[TV(w, P_T)] (shared)",
            ],
            ratio_rows,
        ),
    ]
    if "tree" in res:
        tr = res["tree"]
        parts.append(
            f"Tree overspend ({tr['law']}, T = {tr['T']:g}, {tr['outputs']} outputs, plan "
            f"{tr['plan']!r}): draws (pilot excluded) over outputs x the best tree's expectation "
            f"({fmt(tr['best'])} draws per output), one run per seed."
        )
        parts.append(
            table(
                ["plan given as", "seed", "draws / expectation", "pairs tried", "pairs kept"],
                [[x["how"], x["seed"], x["ratio"], x["pairs"], x["kept"]] for x in tr["runs"]],
            )
        )
    if figures:
        parts.append("Frontier figures (TV against draws per output, one line per method):")
        parts.append("\n".join(f"![frontier, {law}]({path})" for law, path in figures.items()))
    return "\n\n".join(parts)


ALGORITHMS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "algorithms.md"


def _ratio(a: float, b: float) -> float:
    """a / b where both methods reach the tolerance on the grid, else NaN (left out)."""
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan


def _ratio_range(values: list[float]) -> str:
    values = sorted(v for v in values if math.isfinite(v))
    if not values:
        return "no setting"
    mid = values[len(values) // 2]
    return f"{fmt(values[0])} to {fmt(values[-1])} (median {fmt(mid)}, {len(values)} settings)"


def frontier_summary(res: dict) -> str:
    """The frontier's headline figures at TV <= 0.02, as docs/algorithms.md quotes them: the
    spread laws' table, the jackknife's saving over the plain rule and the exact tree, and the
    hybrid's price."""
    rows = res["rows"]
    spread_laws = {law.name for law in suite() if law.spread}
    spread = [r for r in rows if r["law"] in spread_laws and r["T"] <= 0.25]
    need = [r["need"][0.02] for r in rows]
    methods = ("exact", "binomial", "jackknife", "hybrid")
    body = table(
        ["law", "T", "batch N=200 TV"] + [METHOD_LABELS[m] for m in methods],
        [
            [r["law"], f"{r['T']:g}", r["reference_tv"]]
            + [_need({**r, "shared_outputs": res["shared_outputs"]}, 0.02, m) for m in methods]
            for r in spread
        ],
    )
    jack_vs_batch = [_ratio(n["binomial"], n["jackknife"]) for n in need]
    at = [r["need"][0.02] for r in spread]
    jack_vs_exact = [_ratio(n["exact"], n["jackknife"]) for n in at]
    hybrid = [_ratio(n["hybrid"], n["jackknife"]) for n in at if "hybrid" in n]
    return (
        "Draws per output for TV <= 0.02 on the law suite's spread laws (top share at most "
        f"0.06, thousands of outcomes) at T <= 0.25:\n\n{body}\n\n"
        f"Over all {len(rows)} settings of the frontier section, the jackknifed rule needs "
        f"{_ratio_range(jack_vs_batch)} times fewer draws than the plain rule where both reach "
        f"TV <= 0.02, and {_ratio_range(jack_vs_exact)} times fewer than the exact tree on the "
        f"spread settings above; the hybrid needs {_ratio_range(hybrid)} times the jackknife's "
        f"draws there. (`make bench`, section frontier: {res['seconds']:.0f} s in that run.)"
    )


def frontier_doc_blocks(res: dict) -> dict[Path, dict[str, str]]:
    """The docs block this section writes (full runs only)."""
    if res["quick"]:
        return {}
    return {ALGORITHMS_PAGE: {"frontier-summary": frontier_summary(res)}}
