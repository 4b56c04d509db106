"""Figures (PNG, matplotlib Agg): accuracy against N, exact cost against T, selection speed."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from implicit_temperature import expected_exact_draws  # noqa: E402

from .bench_exact import design_formula  # noqa: E402
from .common import LAWS  # noqa: E402


def _laws(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["law"] for r in rows))


def accuracy_figure(res: dict, path: Path) -> None:
    """TV to P^(1/T) against N, one panel per law, one colour per T; ours solid, plug-in dashed."""
    laws = _laws(res["rows"])
    fig, axes = plt.subplots(1, len(laws), figsize=(5.5 * len(laws), 4.2), squeeze=False)
    for ax, law in zip(axes[0], laws, strict=True):
        sub = [r for r in res["rows"] if r["law"] == law]
        for i, t in enumerate(sorted({r["T"] for r in sub})):
            pts = sorted((r["N"], r["tv_binomial"], r["tv_plugin"]) for r in sub if r["T"] == t)
            sizes = [p[0] for p in pts]
            colour = f"C{i}"
            ax.plot(sizes, [max(p[1], 1e-5) for p in pts], "o-", color=colour, label=f"T={t:g}")
            ax.plot(sizes, [max(p[2], 1e-5) for p in pts], "x--", color=colour, alpha=0.6)
        noise = sorted({(r["N"], r["noise_binomial"]) for r in sub})
        floor: dict[int, float] = {}
        for n, v in noise:
            floor[n] = max(floor.get(n, 0.0), v)
        ax.plot(list(floor), list(floor.values()), ":", color="grey", label="noise floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (batch size)")
        ax.set_ylabel("TV distance to P^(1/T)")
        ax.set_title(f"{law}\nsolid: ours (binomial), dashed: plug-in")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cost_figure(res: dict, path: Path) -> None:
    """Exact draws per output against T: both formulas (dense curves) and measurements (points)."""
    laws = _laws(res["rows"])
    dense = [0.2 + 0.0025 * i for i in range(321)]  # T from 0.2 to 1.0
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, law in enumerate(laws):
        sub = sorted((r for r in res["rows"] if r["law"] == law), key=lambda r: r["T"])
        colour = f"C{i}"
        p = LAWS[law]
        corrected = [expected_exact_draws(p, t) for t in dense]
        ax.plot(dense, corrected, "-", color=colour, label=f"{law}: corrected formula")
        design = [design_formula(p, t) for t in dense]
        ax.plot(dense, design, ":", color=colour, label="DESIGN §2 variant")
        ax.errorbar(
            [r["T"] for r in sub],
            [r["draws_per_output"] for r in sub],
            yerr=[0.0 if math.isnan(r["draws_se"]) else r["draws_se"] for r in sub],
            fmt="o",
            color=colour,
            label=f"measured (lanes, {res['outputs']} outputs)",
        )
    ax.axhline(200, color="grey", ls="--", lw=1, label="batch method, N = 200")
    ax.set_yscale("log")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("base draws per output")
    ax.set_title("Exact sampler cost against T")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def selection_figure(res: dict, path: Path) -> None:
    """Speed ratio (published loop time / ours) against N, one line per (T, B)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    combos = sorted({(r["T"], r["B"]) for r in res["rows"]})
    for i, (t, b) in enumerate(combos):
        sub = sorted((r for r in res["rows"] if (r["T"], r["B"]) == (t, b)), key=lambda r: r["N"])
        sizes = [r["N"] for r in sub]
        label = f"T={t:g}, B={b}"
        ax.plot(sizes, [r["speedup_vs_published"] for r in sub], "o-", color=f"C{i}", label=label)
        if sub[0]["speedup_1thread_vs_published"] is not None:
            one = [r["speedup_1thread_vs_published"] for r in sub]
            ax.plot(sizes, one, "x--", color=f"C{i}", alpha=0.7)
    ax.axhline(1.0, color="grey", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (samples per problem)")
    ax.set_ylabel("published loop time / select_from_batch time")
    ax.set_title(
        f"Selection speed ratio ({res['device']}; solid: {res['threads']} threads, dashed: 1)"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
