"""`itemp demo digits`: temperature on real images — which digit a tiny DDPM draws.

The shipped ``DDPMPipeline`` was trained on scikit-learn's 8x8 digits resampled to an imbalanced
class mix (0: 35 %, 1: 25 %, 2: 15 %, 3: 10 %, 4..9: 2.5 % each). The shipped digit classifier is
the quantizer: two images are "the same outcome" when they show the same digit. The demo

* measures the pipeline's class law P at T = 1 (classifier labels of plain draws);
* for each T: the exact method (T <= 1) and the batch method, and the usual workaround (initial
  noise scaled by T), against the target P^(1/T) / Z;
* prints the class-law table (share of each digit, total-variation distance to the target, model
  draws per image, mean ink and contrast of the images) and writes two figures: class-frequency
  bars against the target, and image grids per temperature (``diffusers.utils.make_image_grid``).

Offline, about a minute on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from ..laws import frequencies, tempered, total_variation
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
from .classifier import held_out_accuracy
from .model import DEFAULT_INFERENCE_STEPS, DIGIT_MIX, sample_digits
from .sampler import DIGITS, DigitsSampler, load_digits_sampler


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--temperatures",
        type=float,
        nargs="+",
        default=[0.5, 0.25, 2.0],
        help="temperatures to compare with T = 1 (default: 0.5 0.25 2)",
    )
    parser.add_argument(
        "--num-outputs",
        type=int,
        default=120,
        help="images per method and temperature (default: %(default)s)",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=64,
        help="N, the pool of the batch method; its bias grows as N shrinks and "
        "as T moves away from 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--law-samples",
        type=int,
        default=4000,
        help="plain draws that measure the class law P at T = 1; the target "
        "P^(1/T) magnifies P's sampling error by 1/T (default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_INFERENCE_STEPS,
        help="DDIM inference steps (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    add_output_arguments(parser, "demo-digits.png")


def _texture(images: torch.Tensor) -> tuple[float, float]:
    """Mean ink (pixel mean) and mean per-image contrast (pixel standard deviation)."""
    x = images.reshape(images.shape[0], -1).double()
    return float(x.mean()), float(x.std(dim=1).mean())


def run(args: argparse.Namespace) -> int:
    temps = [float(t) for t in args.temperatures]
    if min(args.num_outputs, args.num_samples, args.law_samples, args.steps) < 1 or not all(
        t > 0 for t in temps
    ):
        print("error: counts and --steps must be >= 1, temperatures > 0")
        return 2
    if args.max_draws is not None and args.max_draws < 1:
        print("error: --max-draws must be >= 1")
        return 2
    try:
        paths = figure_paths(args, ("", "-grids"))  # before any computation
    except FigurePathError as exc:
        print(f"error: {exc}")
        return 2

    m = args.num_outputs
    run_ = measure_digits(
        args,
        on_block=lambda blk: _print_block(
            blk["t"], blk["p"], blk["target"], blk["cols"], blk["plain"], args.num_samples, m
        ),
    )
    pipe, p, plain, blocks = (run_[k] for k in ("pipe", "p", "plain", "blocks"))
    print(
        "TV: total-variation distance to the target P^(1/T)/Z, with P measured at T = 1 (its "
        "sampling error, magnified by 1/T, moves the target too); Monte-Carlo noise alone gives"
        f" about {(DIGITS / (6.28 * m)) ** 0.5:.2f} or less for {m} images. Scaling the initial "
        "noise moves the class law, but not towards P^(1/T) (at T < 1 it drops the 1s)."
    )
    if paths:
        _bars(paths[0], p, blocks, args)
        _grids(paths[1], pipe, plain, blocks)
    return 0


def measure_digits(args: argparse.Namespace, on_block: Any = None) -> dict[str, Any]:
    """Measure the class law P at T = 1, then every method at every T (printing the header
    lines; ``on_block(block)`` after each T). Returns ``{"pipe", "p", "plain", "blocks", "m",
    ...}``, each block ``{"t", "target", "cols", "p", "plain"}`` with columns ``noise``, ``exact``
    (T <= 1) and ``batch``: ``{"images", "draws", "seconds", "freq", "tv", "ink", "contrast"}``.
    """
    digits = load_digits_sampler(args.steps)
    _print_setting(digits.sampler.model, args.steps)
    g = torch.Generator().manual_seed(args.seed)
    plain, p = _measure_class_law(digits, args.law_samples, g)
    blocks: list[dict[str, Any]] = []
    for t in [float(x) for x in args.temperatures]:
        blocks.append(_measure_temperature(digits, args, t, g, p, plain))
        if on_block is not None:
            on_block(blocks[-1])
    return {
        "pipe": digits.sampler.model,
        "p": p,
        "plain": plain,
        "blocks": blocks,
        "m": args.num_outputs,
        "num_samples": args.num_samples,
        "law_samples": args.law_samples,
        "steps": args.steps,
        "seed": args.seed,
    }


def _print_setting(pipe: Any, steps: int) -> None:
    """Print the header lines: the pipeline, its steps, the quantizer and the training mix."""
    acc = held_out_accuracy()
    acc_text = f" (held-out accuracy {acc:.1%})" if acc is not None else ""
    print(
        f"digits DDPM: {type(pipe).__name__} with {type(pipe.scheduler).__name__}, "
        f"{steps} steps; quantizer: the shipped digit classifier{acc_text}"
    )
    print(f"training class mix: {' '.join(f'{v:.3f}' for v in DIGIT_MIX)}")


def _measure_class_law(
    digits: DigitsSampler, n: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(plain, p)``: ``n`` plain draws from ``g`` and their class law P, printed with the
    time they took."""
    start = time.perf_counter()
    plain, p = digits.class_law(n, g)
    law_seconds = time.perf_counter() - start
    print(
        f"class law P at T = 1 ({n} plain draws, {law_seconds:.1f} s): "
        f"{' '.join(f'{v:.3f}' for v in p.tolist())}\n"
    )
    return plain, p


def _measure_temperature(
    digits: DigitsSampler,
    args: argparse.Namespace,
    t: float,
    g: torch.Generator,
    p: torch.Tensor,
    plain: torch.Tensor,
) -> dict[str, Any]:
    """One block of :func:`measure_digits` at temperature ``t``: the noise-scaling column (drawn
    from ``g``), then the exact (T <= 1) and batch columns (seeded by ``args.seed``; a method
    stopped by ``--max-draws`` is printed and left out), each with its statistics."""
    m = args.num_outputs
    target = tempered(p, t)
    cols: dict[str, dict[str, Any]] = {}
    pipe = digits.sampler.model
    start = time.perf_counter()
    noisy = sample_digits(pipe, m, num_inference_steps=args.steps, generator=g, noise_scale=t)
    cols["noise"] = {"images": noisy, "draws": m, "seconds": time.perf_counter() - start}
    for method in ["exact", "batch"] if t <= 1 else ["batch"]:
        col = _method_column(digits, args, t, method)
        if col is not None:
            cols[method] = col
    for col in cols.values():
        col["freq"] = frequencies(digits.classify(col["images"]), DIGITS)
        col["tv"] = total_variation(col["freq"], target)
        col["ink"], col["contrast"] = _texture(col["images"])
    return {"t": t, "target": target, "cols": cols, "p": p, "plain": plain}


def _method_column(
    digits: DigitsSampler, args: argparse.Namespace, t: float, method: str
) -> dict[str, Any] | None:
    """``{"images", "draws", "seconds"}`` of ``method`` at ``t``, or None (printed) when
    ``--max-draws`` stopped it."""
    done = within_budget(
        f"T = {t:g}, {method}",
        args.max_draws,
        lambda: digits.sampler.sample(
            t,
            method=method,
            num_samples=args.num_samples,
            num_outputs=args.num_outputs,
            generator=args.seed,
            max_draws=args.max_draws,
        ),
    )
    if done is None:
        return None
    res, seconds = done
    return {"images": res.samples, "draws": res.draws, "seconds": seconds}


def _share(v: float) -> str:
    return "0" if v == 0 else f"{v:.3f}".lstrip("0")


def digits_markdown(run_: dict[str, Any]) -> str:
    """:func:`measure_digits`' result as the Markdown table docs/diffusion.md shows (class shares,
    TV to the target P^(1/T)/Z, model draws per image; ``make bench`` writes it)."""
    p, m, n_pool = run_["p"], run_["m"], run_["num_samples"]
    head = "| digit | " + " | ".join(str(d) for d in range(DIGITS)) + " | TV to target | "
    lines = [head + "draws/image |", "|---|" + "---|" * (DIGITS + 2)]
    shares = " | ".join(_share(v) for v in p.tolist())
    lines.append(f"| P (T = 1, {run_['law_samples']} draws) | {shares} | | 1 |")
    names = {"exact": "exact", "batch": f"batch N = {n_pool}"}
    for blk in run_["blocks"]:
        t = blk["t"]
        target = " | ".join(_share(v) for v in blk["target"].tolist())
        lines.append(f"| **T = {t:g}** target | {target} | | |")
        for key in ("exact", "batch", "noise"):
            col = blk["cols"].get(key)
            if col is None:
                continue
            label = names.get(key, f"noise × {t:g}")
            cells = " | ".join(_share(v) for v in col["freq"].tolist())
            lines.append(f"| {label} | {cells} | {col['tv']:.3f} | {col['draws'] / m:.3g} |")
    return "\n".join(lines)


def _print_block(
    t: float,
    p: torch.Tensor,
    target: torch.Tensor,
    cols: dict,
    plain: torch.Tensor,
    n_pool: int,
    m: int,
) -> None:
    head = f"T = {t:g}" + ("" if t <= 1 else "   (no exact method above T = 1)")
    print(head)
    print(
        f"  {'':<20}"
        + "".join(f"{d:>6}" for d in range(DIGITS))
        + f"{'TV':>7}{'draws/img':>10}{'ink':>6}{'contr':>6}{'time':>7}"
    )
    ink, contrast = _texture(plain)
    print(
        f"  {'P (T = 1)':<20}"
        + "".join(f"{v:6.3f}" for v in p.tolist())
        + f"{total_variation(p, target):7.3f}{1.0:10.1f}{ink:6.2f}{contrast:6.2f}"
    )
    print(f"  {'target P^(1/T)/Z':<20}" + "".join(f"{v:6.3f}" for v in target.tolist()))
    names = {"noise": f"noise x{t:g}", "exact": "exact", "batch": f"batch N={n_pool}"}
    for key, col in cols.items():
        print(
            f"  {names[key]:<20}"
            + "".join(f"{v:6.3f}" for v in col["freq"].tolist())
            + f"{col['tv']:7.3f}{col['draws'] / m:10.1f}{col['ink']:6.2f}"
            f"{col['contrast']:6.2f}{col['seconds']:6.1f}s"
        )
    print()


def _bars(path: Any, p: torch.Tensor, blocks: list, args: argparse.Namespace) -> None:
    fig = new_figure(figsize=(5.2 * len(blocks), 4.6))
    axes = fig.subplots(1, len(blocks), squeeze=False)[0]
    order = ["plain", "noise", "exact", "batch"]
    for ax, block in zip(axes, blocks, strict=True):
        t, cols = block["t"], block["cols"]
        series = [("plain", p)] + [(k, cols[k]["freq"]) for k in order[1:] if k in cols]
        width = 0.8 / len(series)
        for j, (kind, freq) in enumerate(series):
            xs = [d + (j - (len(series) - 1) / 2) * width for d in range(DIGITS)]
            label = METHOD_LABELS[kind]
            if kind == "noise":
                label = f"initial noise scaled by {t:g}"
            elif kind == "batch":
                label = f"batch method (pool of {args.num_samples})"
            ax.bar(xs, freq.tolist(), width=width, color=METHOD_COLORS[kind], label=label)
        ax.scatter(
            range(DIGITS),
            block["target"].tolist(),
            marker="_",
            s=500,
            color=METHOD_COLORS["target"],
            linewidths=2,
            zorder=3,
            label="target: P^(1/T), normalised",
        )
        ax.set_xticks(range(DIGITS))
        ax.set_xlabel("digit shown (label from the shipped classifier)")
        ax.set_ylabel("share of generated images")
        ax.set_title(f"T = {t:g}: which digit the model draws")
        ax.legend(fontsize=7, markerscale=0.4)
    fig.suptitle(
        f"Digits DDPM: class frequencies against the target ({args.num_outputs} images "
        f"per bar group; P measured from {args.law_samples} plain draws)"
    )
    fig.tight_layout()
    save_figure(fig, path)


def _grids(path: Any, pipe: Any, plain: torch.Tensor, blocks: list) -> None:
    from diffusers.utils import make_image_grid
    from PIL import ImageOps

    from ...adapters.pipelines.wrapper import images_to_output_type

    def grid(images: torch.Tensor) -> Any:
        pil = images_to_output_type(images[:32].detach().cpu(), "pil", pipe)
        tiles = [ImageOps.expand(im.resize((32, 32), 0), border=3, fill=90) for im in pil]
        tiles += [tiles[0].point(lambda _: 90)] * (32 - len(tiles))  # short runs: blank tiles
        return make_image_grid(tiles, rows=4, cols=8)

    panels = [("plain model draws, T = 1", grid(plain))]
    for block in blocks:
        t, cols = block["t"], block["cols"]
        main = "exact" if "exact" in cols else "batch"
        if main in cols:
            panels.append((f"T = {t:g}, {METHOD_LABELS[main]}", grid(cols[main]["images"])))
        panels.append((f"initial noise scaled by {t:g}", grid(cols["noise"]["images"])))
    cols_n = 3
    rows_n = -(-len(panels) // cols_n)
    fig = new_figure(figsize=(4.2 * cols_n, 2.6 * rows_n))
    axes = fig.subplots(rows_n, cols_n, squeeze=False).reshape(-1)
    for ax, (title, im) in zip(axes, panels, strict=False):
        ax.imshow(im, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle("Generated 8x8 digits (first 32 of each run; white = ink)")
    fig.tight_layout()
    save_figure(fig, path)
