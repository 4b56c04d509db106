"""``python -m benchmarks [--quick] [--out PATH] [--only SECTION ...] [--update] [--device DEV]``.

Runs the sections (:mod:`benchmarks.sections`), writes the Markdown report (default
docs/benchmarks.md) and the figures (``figures/`` beside the report). A full run that writes the
default report also rewrites the docs' generated blocks its sections own (the demo tables of
docs/diffusion.md; see :mod:`benchmarks.docblocks`). Exit status 0 unless the arguments are
wrong: a section that cannot run is reported in the file, not raised. Every run also writes the
results record beside the report (:mod:`benchmarks.record`); ``--update`` reruns the ``--only``
sections and keeps the others from it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from . import docblocks, record, report
from .common import machine_info
from .sections import NAMES, sections

SECTIONS = NAMES
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"


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
        "--update",
        action="store_true",
        help="run the --only sections and keep the other sections' results from the record "
        "beside the report (benchmarks.json); the page says which run produced each",
    )
    parser.add_argument(
        "--device", default="cpu", help="device of the selection-speed keys (e.g. cuda)"
    )
    return parser.parse_args(argv)


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    fig_dir = out.parent / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    load_start = _load()
    every = sections(args.device)
    ran = [s for s in every if s.name in args.only]
    mode = "quick" if args.quick else "full"
    env = machine_info()
    entries = record.load(out) if args.update else {}
    for section in ran:
        print(f"[benchmarks] {section.name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        result = section.run(args.quick)
        seconds = time.perf_counter() - start
        run = {"date": env["date (UTC)"], "commit": record.commit(ROOT), "mode": mode}
        entries[section.name] = {"result": result, "seconds": seconds, "run": run}
        print(f"[benchmarks] {section.name} done in {seconds:.1f} s", file=sys.stderr, flush=True)
    load_end = _load()
    chosen = [s for s in every if s.name in entries]
    entries = {s.name: entries[s.name] for s in chosen}
    results = {name: e["result"] for name, e in entries.items()}
    timings = {name: float(e["seconds"]) for name, e in entries.items()}

    given = sys.argv[1:] if argv is None else argv
    invocation = " ".join(["python -m benchmarks"] + [shlex.quote(a) for a in given])
    parts = [
        report.header(env, {"this report": invocation}, mode, timings, (load_start, load_end)),
        "\n".join(record.provenance_lines(entries)),
        report.summary(results),
    ]
    figs = 0
    for section in chosen:
        figure = None
        if section.figure is not None:
            filename, plot = section.figure
            plot(results[section.name], fig_dir / filename)
            figure, figs = f"figures/{filename}", figs + 1
        parts.append(section.render(results[section.name], figure))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(p for p in parts if p) + "\n", encoding="utf-8")
    record.save(out, entries)
    print(f"[benchmarks] wrote {out} and {figs} figures in {fig_dir}", file=sys.stderr)
    if out.resolve() == DEFAULT_OUT.resolve():  # only the repository's own report owns the docs
        for section in ran:
            if section.doc_blocks is None:
                continue
            for page, bodies in section.doc_blocks(results[section.name]).items():
                if bodies and docblocks.update_file(page, bodies):
                    print(f"[benchmarks] rewrote {sorted(bodies)} in {page}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
