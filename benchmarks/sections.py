"""The benchmark sections, one module each, and the one registry ``python -m benchmarks`` runs.

Adding a section (e.g. for a new method or adapter):

1. write ``benchmarks/bench_<name>.py`` with ``run(quick: bool) -> dict`` (measurements only,
   never assertions; ``quick`` must stay under a few seconds) and a renderer
   ``render(result: dict, figure: str | None) -> str`` that returns the section's Markdown
   (heading ``## N. Title`` first; use :func:`benchmarks.report.table`, :func:`~.report.fmt`
   and :func:`~.report.target_note` so that a missed target is flagged on the page);
2. append one :class:`Section` to :data:`SECTIONS` below: its ``--only`` name, ``run``,
   ``render``, and optionally a figure (``(file name, plot(result, path))``) and the docs
   blocks it writes (``doc_blocks(result) -> {page: {block name: Markdown}}``; the page must
   hold ``<!-- generated:NAME -->`` ... ``<!-- end -->``, see :mod:`benchmarks.docblocks`);
3. optionally add its headline to :func:`benchmarks.report.summary`.

Nothing else changes: the command line's ``--only`` choices, the page and the per-section wall
times all come from this list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import (
    bench_accuracy,
    bench_auto,
    bench_demos,
    bench_digits_notes,
    bench_exact,
    bench_frontier,
    bench_selection,
    bench_serve,
    bench_tolerance,
    end_to_end,
    figures,
    frontier_report,
    report,
)

Result = dict[str, Any]


@dataclass(frozen=True)
class Section:
    """One section of the benchmarks page."""

    name: str  #: the ``--only`` name
    run: Callable[[bool], Result]  #: ``run(quick) -> result``
    render: Callable[[Result, str | None], str]  #: ``render(result, figure path or None)``
    figure: tuple[str, Callable[[Result, Path], None]] | None = None
    doc_blocks: Callable[[Result], dict[Path, dict[str, str]]] | None = None


def _one_thread(run: Callable[[bool], Result]) -> Callable[[bool], Result]:
    """Untimed sections run on one thread: on a busy machine torch's multi-threaded kernels can
    be many times slower than one thread, and nothing there is a timing."""
    return lambda quick: bench_selection.with_threads(1, lambda: run(quick))


def _frontier_figures(result: Result, path: Path) -> None:
    """The frontier's data (``path``, JSON) and one figure per law beside it; the renderer reads
    their names from ``result["figures"]``."""
    frontier_report.save(result, path)
    result["figures"] = frontier_report.frontier_figures(result, path.parent)


def sections(device: str = "cpu") -> tuple[Section, ...]:
    """Every section, in page order (``device``: where the selection-speed keys live)."""
    return (
        Section(
            "selection",
            lambda quick: bench_selection.run(quick, device=device),
            report.selection_section,
            ("selection_speed.png", figures.selection_figure),
        ),
        Section(
            "exact",
            bench_exact.run,
            report.exact_section,
            ("cost_vs_T.png", figures.cost_figure),
        ),
        Section(
            "accuracy",
            _one_thread(bench_accuracy.run),
            report.accuracy_section,
            ("accuracy_vs_N.png", figures.accuracy_figure),
        ),
        Section("auto", _one_thread(bench_auto.run), lambda r, _f: report.auto_section(r)),
        Section(
            "tolerance",
            _one_thread(bench_tolerance.run),
            bench_tolerance.section,
            ("tv_calibration.png", bench_tolerance.figure),
        ),
        Section(
            "frontier",
            _one_thread(bench_frontier.run),
            lambda r, _f: frontier_report.frontier_section(r, r.get("figures")),
            ("frontier.json", _frontier_figures),
            doc_blocks=frontier_report.frontier_doc_blocks,
        ),
        Section("end_to_end", end_to_end.run, lambda r, _f: report.end_to_end_section(r)),
        Section("serve", bench_serve.run, lambda r, _f: bench_serve.section(r)),
        Section("demos", bench_demos.run, bench_demos.render, doc_blocks=bench_demos.doc_blocks),
        Section(
            "digits_notes",
            _one_thread(bench_digits_notes.run),
            bench_digits_notes.render,
            doc_blocks=bench_digits_notes.doc_blocks,
        ),
    )


NAMES: tuple[str, ...] = tuple(s.name for s in sections())
