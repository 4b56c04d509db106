"""The demos' tables, measured: ``itemp demo diffusion``, ``itemp demo flow`` and
``itemp demo digits`` with their default arguments (no figures), as the Markdown tables
docs/diffusion.md quotes, with each demo's wall time.

The full run (``make bench``) writes the tables into docs/diffusion.md's generated blocks
``demo-ddpm``, ``demo-flow`` and ``demo-digits`` (see :mod:`benchmarks.docblocks`), so the page
never quotes a hand-copied number. ``--quick`` runs the demos on fewer outputs and writes only
the benchmarks page.

    python -m benchmarks.bench_demos     # the three demos, full size: rewrites the docs blocks
                                         # only (docs/benchmarks.md is left as it is)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import ROOT

#: Smaller runs for ``--quick`` (the tables then do not go into the docs).
QUICK_ARGS = {
    "diffusion": ["--num-outputs", "100"],
    "flow": ["--num-outputs", "100"],
    "digits": ["--num-outputs", "30", "--law-samples", "1000"],
}
DOC_PAGE = ROOT / "docs" / "diffusion.md"
BLOCKS = {"diffusion": "demo-ddpm", "flow": "demo-flow", "digits": "demo-digits"}


def _args(add_arguments: Callable[[argparse.ArgumentParser], None], extra: list[str]) -> Any:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--out", "", *extra])


def _timed(fn: Callable[[], str]) -> dict[str, Any]:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the demos print their own tables
        markdown = fn()
    return {"markdown": markdown, "seconds": time.perf_counter() - start}


def run(quick: bool) -> dict[str, Any]:
    """``{"quick", "demos": {name: {"markdown", "seconds", "args"}}}`` for the three demos."""
    from implicit_temperature.demos.digits import demo as digits
    from implicit_temperature.demos.mixture import diffusion_demo, flow_demo
    from implicit_temperature.demos.mixture.loading import load_ddpm_pipeline, load_flow_pipeline
    from implicit_temperature.demos.mixture.runner import compare_on_mixture, comparison_markdown

    demos: dict[str, Any] = {}
    for name, module, load, title in (
        ("diffusion", diffusion_demo, load_ddpm_pipeline, "DDPM demo"),
        ("flow", flow_demo, load_flow_pipeline, "flow demo"),
    ):
        extra = QUICK_ARGS[name] if quick else []
        args = _args(module.add_arguments, extra)
        demos[name] = _timed(
            lambda a=args, ld=load, t=title: comparison_markdown(compare_on_mixture(t, ld, a))
        )
        demos[name]["args"] = extra
    extra = QUICK_ARGS["digits"] if quick else []
    args = _args(digits.add_arguments, extra)
    demos["digits"] = _timed(lambda: digits.digits_markdown(digits.measure_digits(args)))
    demos["digits"]["args"] = extra
    return {"quick": quick, "demos": demos}


def doc_blocks(res: dict[str, Any]) -> dict[Path, dict[str, str]]:
    """The docs blocks this section writes (full runs only): the three tables, each followed by
    the command and wall time that produced it."""
    if res["quick"]:
        return {}
    bodies = {}
    for name, entry in res["demos"].items():
        bodies[BLOCKS[name]] = (
            f"{entry['markdown']}\n\n*`itemp demo {name}` with its defaults, written by "
            f"`make bench` ({entry['seconds']:.0f} s in that run; docs/benchmarks.md shows the "
            "machine).*"
        )
    return {DOC_PAGE: bodies}


def render(res: dict[str, Any], figure: str | None = None) -> str:
    """The benchmarks page's section: each demo's table and wall time."""
    mode = "quick run: fewer outputs, docs/diffusion.md not rewritten" if res["quick"] else "full"
    parts = [
        "## 6. The demos' tables",
        "`itemp demo diffusion`, `itemp demo flow` and `itemp demo digits` "
        f"({mode}; no figures). The full run writes these tables into docs/diffusion.md.",
    ]
    for name, entry in res["demos"].items():
        extra = " ".join(entry["args"])
        parts.append(f"**`itemp demo {name}{' ' + extra if extra else ''}`** ")
        parts.append(entry["markdown"])
        parts.append(f"(wall time {entry['seconds']:.1f} s)")
    return "\n\n".join(parts)


if __name__ == "__main__":
    from . import docblocks

    for page, bodies in doc_blocks(run(quick=False)).items():
        docblocks.update_file(page, bodies)
        print(f"rewrote {sorted(bodies)} in {page}")
