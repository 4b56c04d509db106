"""Figures (PNG, matplotlib Agg): accuracy against N, exact cost against T, selection speed."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from implicit_temperature import expected_exact_draws  # noqa: E402

from .bench_exact import TREE_LAWS  # noqa: E402


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
    """Exact draws per output against T, one panel per law: flat rounds and the best collision
    tree (expected, from the known law), plan="auto" measured (pilot included), batch N = 200."""
    trees = res.get("trees", {"rows": []})
    laws = list(dict.fromkeys(r["law"] for r in trees["rows"])) or list(TREE_LAWS)
    dense = [0.05 * (1 / 0.05) ** (i / 39) for i in range(40)]  # T from 0.05 to 1, log-spaced
    fig, axes = plt.subplots(1, len(laws), figsize=(6.0 * len(laws), 4.6), squeeze=False)
    for ax, law in zip(axes[0], laws, strict=True):
        p = TREE_LAWS[law]
        flat = [expected_exact_draws(p, t, plan="flat") for t in dense]
        best = [expected_exact_draws(p, t) for t in dense]
        ax.plot(dense, flat, "-", color="C0", label="exact, flat rounds (expected)")
        ax.plot(dense, best, "-", color="C2", lw=2, label="exact, best collision tree (expected)")
        sub = sorted((r for r in trees["rows"] if r["law"] == law), key=lambda r: r["T"])
        if sub:
            ax.errorbar(
                [r["T"] for r in sub],
                [r["measured"] for r in sub],
                yerr=[0.0 if math.isnan(r["measured_se"]) else r["measured_se"] for r in sub],
                fmt="o",
                color="C3",
                label=f'exact, plan="auto", measured ({trees["outputs"]} outputs, pilot included)',
            )
        flat_rows = [r for r in res.get("rows", []) if r["law"] == law]
        if flat_rows:
            ax.plot(
                [r["T"] for r in flat_rows],
                [r["draws_per_output"] for r in flat_rows],
                "x",
                color="C0",
                label="exact, flat rounds, measured",
            )
        ax.axhline(200, color="grey", ls="--", lw=1, label="batch method, N = 200 (approximate)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(top=min(1e9, max(flat) * 2))
        ax.set_xlabel("temperature T")
        ax.set_ylabel("base draws per output")
        ax.set_title(f"{law}\nbase draws per output against T", fontsize=10)
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
