"""``python -m benchmarks [--quick] [--out PATH] [--only SECTION ...] [--device DEV]``.

Runs the sections, writes the Markdown report (default docs/benchmarks.md) and the figures
(``figures/`` beside the report). Exit status 0 unless the arguments are wrong: a section that
cannot run is reported in the file, not raised.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from . import (
    bench_accuracy,
    bench_auto,
    bench_exact,
    bench_frontier,
    bench_selection,
    bench_tolerance,
    end_to_end,
    figures,
    frontier_report,
    report,
)
from .common import machine_info

SECTIONS = ("selection", "exact", "accuracy", "auto", "tolerance", "frontier", "end_to_end")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure cost, accuracy and speed of implicit-temperature; write a report.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller grid and fewer repeats (under a minute)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="Markdown report to write (default: docs/benchmarks.md); figures go to "
        "figures/ beside it",
    )
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run"
    )
    parser.add_argument(
        "--device", default="cpu", help="device of the selection-speed keys (e.g. cuda)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    fig_dir = out.parent / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    runners = {
        "selection": lambda q: bench_selection.run(q, device=args.device),
        "exact": bench_exact.run,
        # untimed sections run on one thread: on a busy machine torch's multi-threaded kernels
        # can be many times slower than one thread, and nothing there is a timing
        "accuracy": lambda q: bench_selection.with_threads(1, lambda: bench_accuracy.run(q)),
        "auto": lambda q: bench_selection.with_threads(1, lambda: bench_auto.run(q)),
        "tolerance": lambda q: bench_selection.with_threads(1, lambda: bench_tolerance.run(q)),
        "frontier": lambda q: bench_selection.with_threads(1, lambda: bench_frontier.run(q)),
        "end_to_end": end_to_end.run,
    }
    results: dict[str, dict] = {}
    timings: dict[str, float] = {}
    for name in SECTIONS:
        if name not in args.only:
            continue
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        results[name] = runners[name](args.quick)
        timings[name] = time.perf_counter() - start
        print(f"[benchmarks] {name} done in {timings[name]:.1f} s", file=sys.stderr, flush=True)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    figs: dict[str, str] = {}
    plots = (
        ("accuracy", "accuracy_vs_N.png", figures.accuracy_figure),
        ("exact", "cost_vs_T.png", figures.cost_figure),
        ("selection", "selection_speed.png", figures.selection_figure),
        ("tolerance", "tv_calibration.png", bench_tolerance.figure),
    )
    for section, filename, plot in plots:
        if section in results:
            plot(results[section], fig_dir / filename)
            figs[section] = f"figures/{filename}"

    given = sys.argv[1:] if argv is None else argv
    invocation = " ".join(["python -m benchmarks"] + [shlex.quote(a) for a in given])
    commands = {"this report": invocation}
    parts = [
        report.header(
            machine_info(),
            commands,
            "quick" if args.quick else "full",
            timings,
            (load_start, load_end),
        ),
        report.summary(results),
    ]
    if "selection" in results:
        parts.append(report.selection_section(results["selection"], figs.get("selection")))
    if "exact" in results:
        parts.append(report.exact_section(results["exact"], figs.get("exact")))
    if "accuracy" in results:
        parts.append(report.accuracy_section(results["accuracy"], figs.get("accuracy")))
    if "auto" in results:
        parts.append(report.auto_section(results["auto"]))
    if "tolerance" in results:
        parts.append(bench_tolerance.section(results["tolerance"], figs.get("tolerance")))
    if "frontier" in results:
        frontier_report.save(results["frontier"], fig_dir / "frontier.json")
        law_figs = frontier_report.frontier_figures(results["frontier"], fig_dir)
        figs.update({f"frontier {k}": v for k, v in law_figs.items()})
        parts.append(frontier_report.frontier_section(results["frontier"], law_figs))
    if "end_to_end" in results:
        parts.append(report.end_to_end_section(results["end_to_end"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(p for p in parts if p) + "\n", encoding="utf-8")
    print(f"[benchmarks] wrote {out} and {len(figs)} figures in {fig_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
