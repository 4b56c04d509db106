"""Shared body of ``itemp demo diffusion`` and ``itemp demo flow``.

On a demo pipeline trained on a 2-D Gaussian mixture with known weights w, compare the component
frequencies of

* plain draws (T = 1),
* the baseline users reach for today: scaling the initial noise by T (Glow-style "temperature":
  latents ~ N(0, T^2 I)),
* our exact method and our batch method at T,

against the target w^(1/T) / Z. Prints the table (with the total-variation distance to the target
and the draws spent per output) and writes a figure: scatter of samples (axes x1, x2, components
numbered at their means), and a bar chart of the frequencies against the target; each method has
the same colour in both panels (:data:`~implicit_temperature.demos.output.METHOD_COLORS`).
The figure path is checked before anything is computed, an existing file is never overwritten
without ``--force``, and matplotlib's global backend is left alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch

from ..laws import frequencies, total_variation
from ..output import (
    METHOD_COLORS,
    METHOD_LABELS,
    FigurePathError,
    add_output_arguments,
    figure_paths,
    new_figure,
    save_figure,
    within_budget,
)
from .mixture import NearestComponentQuantizer, tempered_weights


def add_common_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.5,
        help="temperature T; exact needs T <= 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--num-outputs",
        type=int,
        default=500,
        help="samples per method; the batch method draws num-outputs x "
        "num-samples (default: %(default)s)",
    )
    parser.add_argument(
        "--num-samples", type=int, default=200, help="N of the batch method (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    add_output_arguments(parser, default_out)


def run_mixture_demo(title: str, load: Callable[[], Any], args: argparse.Namespace) -> int:
    """Run the comparison on ``load()``'s pipeline; returns a process exit code."""
    t = float(args.temperature)
    m = int(args.num_outputs)
    if m < 1 or args.num_samples < 1 or not t > 0:
        print("error: --num-outputs and --num-samples must be >= 1 and --temperature > 0")
        return 2
    if args.max_draws is not None and args.max_draws < 1:
        print("error: --max-draws must be >= 1")
        return 2
    try:
        paths = figure_paths(args)  # before any computation
    except FigurePathError as exc:
        print(f"error: {exc}")
        return 2
    cmp = compare_on_mixture(title, load, args)
    print_comparison(cmp)
    if paths:
        _figure(paths[0], title, cmp["t"], cmp["means"], cmp["columns"], cmp["target"])
    return 0


def compare_on_mixture(title: str, load: Callable[[], Any], args: argparse.Namespace) -> dict:
    """Draw every column of the comparison (printing the header first): ``{"t", "m", "means",
    "weights", "target", "columns"}``, each column ``{"samples", "freq", "draws", "seconds",
    "kind"}`` keyed by its name (``"T=1"``, ``"noise x0.5"``, ``"exact"``, ``"batch"``)."""
    from ...plugins import TemperatureSampler

    t = float(args.temperature)
    m = int(args.num_outputs)
    pipe = load()
    means, weights = pipe.mixture_means, pipe.mixture_weights.double()
    quantize = NearestComponentQuantizer(means)
    sampler = TemperatureSampler(pipe, progress=False)
    target = tempered_weights(weights, t)
    print(
        f"{title}: {type(pipe).__name__} with {type(pipe.scheduler).__name__}, "
        f"adapter {sampler.adapter.name!r}"
    )
    print(
        f"Trained mixture weights w = {[round(v, 3) for v in weights.tolist()]}; "
        f"T = {t:g}; target w^(1/T)/Z; {m} samples per column; seed {args.seed}\n"
    )
    columns = _draw_columns(pipe, sampler, quantize, args)
    if t > 1:
        print("(T > 1: no exact method exists above T = 1; showing batch only)\n")
    return {
        "t": t,
        "m": m,
        "num_samples": args.num_samples,
        "seed": args.seed,
        "means": means,
        "weights": weights,
        "target": target,
        "columns": columns,
    }


def _draw_columns(
    pipe: Any, sampler: Any, quantize: NearestComponentQuantizer, args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """The columns of :func:`compare_on_mixture`, in order: plain draws and noise scaled by T
    (both from one generator seeded by ``--seed``), then exact (T <= 1) and batch (seeded by
    ``--seed``); a column stopped by ``--max-draws`` is printed and left out."""
    t = float(args.temperature)
    m = int(args.num_outputs)
    k = pipe.mixture_means.shape[0]
    columns: dict[str, dict[str, Any]] = {}

    def timed(name: str, kind: str, fn: Callable[[], tuple[torch.Tensor, int]]) -> None:
        done = within_budget(name, args.max_draws, fn, end="\n\n")
        if done is None:
            return
        (samples, draws), seconds = done
        columns[name] = {
            "samples": samples,
            "freq": frequencies(quantize(samples), k),
            "draws": draws,
            "seconds": seconds,
            "kind": kind,
        }

    g = torch.Generator().manual_seed(args.seed)
    timed("T=1", "plain", lambda: (sampler.adapter.draw(m, generator=g), m))

    def noise_scaled() -> tuple[torch.Tensor, int]:
        dim = pipe.mixture_means.shape[1]
        latents = t * torch.randn(m, dim, generator=g)
        return pipe(m, generator=g, latents=latents).samples, m

    timed(f"noise x{t:g}", "noise", noise_scaled)
    for method in ["exact", "batch"] if t <= 1 else ["batch"]:

        def run_method(method: str = method) -> tuple[torch.Tensor, int]:
            res = sampler.sample(
                t,
                method=method,
                num_samples=args.num_samples,
                num_outputs=m,
                generator=args.seed,
                max_draws=args.max_draws,
            )
            return res.samples, res.draws

        timed(method, method, run_method)
    return columns


def print_comparison(cmp: dict) -> None:
    """The demo's text table of :func:`compare_on_mixture`'s result."""
    t, m, weights, target, columns = (cmp[k] for k in ("t", "m", "weights", "target", "columns"))
    k = weights.numel()
    model_target = tempered_weights(columns["T=1"]["freq"], t)
    names = list(columns)
    header = f"{'component':>9} {'w':>7} {'target':>7} " + " ".join(f"{n:>10}" for n in names)
    print(header)
    print("-" * len(header))
    for i in range(k):
        row = f"{i:>9} {weights[i].item():>7.3f} {target[i].item():>7.3f} "
        row += " ".join(f"{columns[n]['freq'][i].item():>10.3f}" for n in names)
        print(row)
    print("-" * len(header))
    print(
        f"{'TV to target':>25} "
        + " ".join(f"{total_variation(columns[n]['freq'], target):>10.3f}" for n in names)
    )
    print(f"{'draws/output':>25} " + " ".join(f"{columns[n]['draws'] / m:>10.1f}" for n in names))
    print(f"{'seconds':>25} " + " ".join(f"{columns[n]['seconds']:>10.2f}" for n in names))
    print(
        f"\ntarget from the model's own T=1 frequencies: "
        f"{[round(v, 3) for v in model_target.tolist()]} (what exact/batch aim at: the model "
        "is not exactly the mixture)"
    )


def comparison_markdown(cmp: dict) -> str:
    """:func:`compare_on_mixture`'s result as the Markdown table docs/diffusion.md shows
    (component shares, TV to the target w^(1/T)/Z, draws per output; ``make bench`` writes it)."""
    t, m, weights, target, columns = (cmp[k] for k in ("t", "m", "weights", "target", "columns"))
    names = list(columns)
    heads = {"T=1": "T=1", f"noise x{t:g}": f"noise × {t:g}", "exact": "exact"}
    heads["batch"] = f"batch N={cmp['num_samples']}"
    lines = [
        "| component | w | target | " + " | ".join(heads.get(n, n) for n in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for i in range(weights.numel()):
        cells = [f"{columns[n]['freq'][i].item():.3f}" for n in names]
        lines.append(
            f"| {i} | {weights[i].item():.3f} | {target[i].item():.3f} | "
            + " | ".join(cells)
            + " |"
        )
    tvs = [f"{total_variation(columns[n]['freq'], target):.3f}" for n in names]
    lines.append("| TV to target | | | " + " | ".join(tvs) + " |")
    draws = [f"{columns[n]['draws'] / m:.3g}" for n in names]
    lines.append("| draws/output | | | " + " | ".join(draws) + " |")
    return "\n".join(lines)


def _figure(
    path: Any, title: str, t: float, means: torch.Tensor, columns: dict, target: torch.Tensor
) -> None:
    """The demo's figure: the samples of every column (left) and their component shares
    against the target (right), each method in its colour, saved to ``path``."""
    fig = new_figure(figsize=(11.5, 5.6))
    ax0, ax1 = fig.subplots(1, 2)
    _scatter_panel(ax0, t, means, columns)
    _share_panel(ax1, t, columns, target)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def _scatter_panel(ax: Any, t: float, means: torch.Tensor, columns: dict) -> None:
    """The 2-D samples of every column, with the component means numbered."""
    for name, col in columns.items():
        x = col["samples"].detach().cpu()
        ax.scatter(
            x[:, 0],
            x[:, 1],
            s=3,
            alpha=0.35,
            color=METHOD_COLORS[col["kind"]],
            label=_label(name, col["kind"], t),
        )
    ax.scatter(means[:, 0], means[:, 1], marker="x", color="k", s=60, label="component means")
    for i, (mx, my) in enumerate(means.tolist()):
        ax.annotate(
            f"component {i}",
            (mx, my),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
            fontweight="bold",
        )
    ax.set_aspect("equal")
    ax.set_xlabel("first coordinate x1")
    ax.set_ylabel("second coordinate x2")
    ax.set_title("generated 2-D samples, coloured by method")
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=7)
    for handle in getattr(legend, "legend_handles", None) or legend.legendHandles:
        handle.set_sizes([25])
        handle.set_alpha(1.0)


def _share_panel(ax: Any, t: float, columns: dict, target: torch.Tensor) -> None:
    """Bars of each column's component shares, with the target's marks."""
    names = list(columns)
    k = target.numel()
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        col = columns[name]
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(k)]
        ax.bar(
            xs,
            col["freq"].tolist(),
            width=width,
            color=METHOD_COLORS[col["kind"]],
            label=_label(name, col["kind"], t),
        )
    ax.scatter(
        range(k),
        target.tolist(),
        marker="_",
        s=900,
        color=METHOD_COLORS["target"],
        linewidths=2,
        label="target: trained weights w^(1/T), normalised",
        zorder=3,
    )
    ax.set_xticks(range(k))
    ax.set_xticklabels([f"component {i}" for i in range(k)])
    ax.set_xlabel("mixture component (nearest mean)")
    ax.set_ylabel("share of the samples")
    ax.set_title(f"how often each component is drawn, T = {t:g}")
    ax.legend(fontsize=7, markerscale=0.4)


def _label(name: str, kind: str, t: float) -> str:
    if kind == "noise":
        return f"initial noise scaled by T = {t:g}"
    if kind in ("exact", "batch"):
        return f"{METHOD_LABELS[kind]}, T = {t:g}"
    return METHOD_LABELS[kind]
