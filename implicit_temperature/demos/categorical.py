"""`itemp demo categorical`: the core on a known categorical law.

Samples a law we chose at several temperatures with each method and prints the measured
frequencies next to the target P^(1/T) / Z_T, with the total-variation distance and the draws
spent per output (for the exact method also the expected draws from the cost formula).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from ..core import expected_exact_draws, temperature_sample
from .laws import frequencies, tempered, total_variation
from .output import within_budget

LAWS = {
    "peaked": [0.5, 0.3, 0.15, 0.05],
    "zipf": None,  # Zipf over 30 outcomes, exponent 1.1 (built below)
}


def _law(name: str) -> torch.Tensor:
    if name == "zipf":
        p = torch.arange(1, 31, dtype=torch.float64) ** -1.1
    else:
        p = torch.tensor(LAWS[name], dtype=torch.float64)
    return p / p.sum()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--law",
        choices=sorted(LAWS),
        default="peaked",
        help="the known law P to temper (default: peaked = .5/.3/.15/.05)",
    )
    parser.add_argument(
        "--temperatures",
        type=float,
        nargs="+",
        default=[2.0, 1.0, 0.8, 0.5, 0.37, 0.25],
        help="temperatures to run (default: 2 1 0.8 0.5 0.37 0.25)",
    )
    parser.add_argument(
        "--num-outputs",
        type=int,
        default=5000,
        help="outputs per method and T (default: %(default)s)",
    )
    parser.add_argument(
        "--num-samples", type=int, default=200, help="N of the batch method (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    parser.add_argument(
        "--max-draws",
        type=int,
        default=None,
        help="budget of draws for each exact/auto run (default: the library's, "
        "1e6 per output); a run that would exceed it is reported and skipped",
    )


def run(args: argparse.Namespace) -> int:
    """Print P, then for each temperature the table of every method against P^(1/T) / Z."""
    if args.max_draws is not None and args.max_draws < 1:
        print("error: --max-draws must be >= 1")
        return 2
    p = _law(args.law)
    k = p.numel()

    def draw(m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.multinomial(p.float(), m, replacement=True, generator=generator)

    print(
        f"Known law P ({args.law}, {k} outcomes): "
        + " ".join(f"{v:.3f}" for v in p[:8].tolist())
        + (" ..." if k > 8 else "")
    )
    print(
        f"{args.num_outputs} outputs per method; batch N = {args.num_samples}; seed {args.seed}\n"
    )
    for t in args.temperatures:
        _print_block(p, t, _measure_temperature(draw, p, t, args))
    print(
        "TV includes Monte-Carlo noise of about sqrt(K / (2 pi n)) for n outputs; the exact method"
        " is unbiased, the batch method approaches P_T as N grows."
    )
    return 0


#: one row of a temperature's table: (label, frequencies, TV to the target, draws per output,
#: seconds)
Row = tuple[str, torch.Tensor, float, float, float]


def _measure_temperature(
    draw: Callable[..., torch.Tensor], p: torch.Tensor, t: float, args: argparse.Namespace
) -> list[Row]:
    """One row per method at ``t`` (exact only for T <= 1; a method stopped by ``--max-draws``
    is printed and left out), every run seeded by ``args.seed``."""
    target = tempered(p, t)
    rows: list[Row] = []
    for method in ["exact", "batch", "auto"] if t <= 1 else ["batch", "auto"]:
        done = within_budget(
            f"  T = {t:g}, {method}",
            args.max_draws,
            lambda method=method: temperature_sample(
                draw,
                t,
                method=method,
                num_samples=args.num_samples,
                num_outputs=args.num_outputs,
                max_draws=args.max_draws,
                generator=args.seed,
            ),
        )
        if done is None:
            continue
        res, seconds = done
        freq = frequencies(res.samples, p.numel())
        tv = total_variation(freq, target)
        label = method if method != "auto" else f"auto->{res.method}"
        rows.append((label, freq, tv, res.draws / args.num_outputs, seconds))
    return rows


def _print_block(p: torch.Tensor, t: float, rows: list[Row]) -> None:
    """The table at ``t``: P, the target and each row, on the first (at most 4) outcomes."""
    target = tempered(p, t)
    shown = min(p.numel(), 4)
    print(
        f"T = {t:g}"
        + (
            f"   (exact expects {expected_exact_draws(p, t):.1f} draws/output)"
            if t <= 1
            else "   (exact impossible above T = 1)"
        )
    )
    header = "  {:<14}".format("") + "".join(f"{'x=' + str(i):>8}" for i in range(shown))
    print(header + f"{'TV':>8}{'draws/out':>11}{'time':>8}")
    print("  {:<14}".format("P (T=1)") + "".join(f"{v:8.3f}" for v in p[:shown].tolist()))
    print("  {:<14}".format("target P_T") + "".join(f"{v:8.3f}" for v in target[:shown].tolist()))
    for label, freq, tv, dpo, seconds in rows:
        print(
            f"  {label:<14}"
            + "".join(f"{v:8.3f}" for v in freq[:shown].tolist())
            + f"{tv:8.3f}{dpo:11.1f}{seconds:7.2f}s"
        )
    print()
