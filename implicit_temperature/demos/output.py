"""What every demo shares for its output: figure paths, saving, colours, ``--max-draws``.

* Figure paths are checked *before* any computation (:func:`resolve_figure_path`): an explicit
  ``--out`` that exists is refused unless ``--force``; the default name is never overwritten
  either: when it is taken the next free numbered name is used (``demo-digits-1.png``, ...), and
  the demo prints the path it wrote.
* Figures are drawn on a ``matplotlib.figure.Figure`` with an Agg canvas (:func:`new_figure`,
  :func:`save_figure`): no ``pyplot``, so a program that imports the library keeps its own
  matplotlib backend.
* :data:`METHOD_COLORS`: one colour per method in every panel of every demo.
* :func:`within_budget`: a run that ``--max-draws`` stops is reported in one line and skipped.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..core.errors import DrawBudgetExceeded, ImplicitTemperatureError

R = TypeVar("R")

#: One colour per method, the same in every figure (matplotlib named colours).
METHOD_COLORS: dict[str, str] = {
    "plain": "0.55",  # plain model draws, T = 1
    "noise": "tab:orange",  # initial noise scaled by T (the usual workaround)
    "exact": "tab:blue",  # our exact method
    "batch": "tab:green",  # our batch method
    "target": "black",  # the target law P^(1/T)
}

#: Plain-words legend labels for the methods.
METHOD_LABELS: dict[str, str] = {
    "plain": "plain model draws (T = 1)",
    "noise": "initial noise scaled by T",
    "exact": "exact method",
    "batch": "batch method",
    "target": "target P^(1/T) / Z",
}


class FigurePathError(ImplicitTemperatureError, ValueError):
    """``--out`` cannot be written (exists without ``--force``, missing folder, bad suffix)."""


def add_output_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """``--out`` (figure file; '' for none), ``--force`` and ``--max-draws``."""
    parser.add_argument(
        "--out",
        default=None,
        help="figure file; '' for no figure. An existing file is refused "
        f"without --force (default: {default_out}, numbered if that exists)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the --out file if it exists"
    )
    parser.add_argument(
        "--max-draws",
        type=int,
        default=None,
        help="budget of model draws for each exact/auto run; a run that would "
        "exceed it stops with a message (default: the library's, 1e6 per output)",
    )
    parser.set_defaults(default_out=default_out)


def _check_writable(path: Path) -> None:
    if path.suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise FigurePathError(f"--out {path}: use a .png, .pdf, .svg or .jpg file name")
    folder = path.parent
    if not folder.is_dir():
        raise FigurePathError(f"--out {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise FigurePathError(f"--out {path}: folder {folder} is not writable")


def _with_suffixes(first: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return [first.with_name(f"{first.stem}{s}{first.suffix}") for s in suffixes]


def resolve_figure_paths(
    out: str | None, default: str, force: bool = False, suffixes: tuple[str, ...] = ("",)
) -> list[Path] | None:
    """The figure files to write (one per name suffix), checked before any computation.

    ``out=""``: None (no figure). ``out=None``: ``default`` with each suffix, or, when any of
    those exists, the first ``<stem>-<k>`` for which none exists. An explicit ``out``: none of
    its files may exist unless ``force``. The folder must exist and be writable, and the suffix
    be one matplotlib writes (.png, .pdf, .svg, .jpg). Raises :class:`FigurePathError`.
    """
    if out == "":
        return None
    if out is None:
        base, k = Path(default), 1
        paths = _with_suffixes(base, suffixes)
        while any(p.exists() for p in paths):
            paths = _with_suffixes(base.with_name(f"{base.stem}-{k}{base.suffix}"), suffixes)
            k += 1
    else:
        paths = _with_suffixes(Path(out), suffixes)
        taken = [str(p) for p in paths if p.exists()]
        if taken and not force:
            raise FigurePathError(
                f"{', '.join(taken)} exist(s); pass --force to overwrite, or choose another --out"
            )
    for p in paths:
        _check_writable(p)
    return paths


def figure_paths(args: argparse.Namespace, suffixes: tuple[str, ...] = ("",)) -> list[Path] | None:
    """:func:`resolve_figure_paths` from a demo's ``args`` (``out``, ``force``, ``default_out``)."""
    return resolve_figure_paths(args.out, args.default_out, args.force, suffixes)


def new_figure(**kwargs: Any) -> Any:
    """A matplotlib ``Figure`` on an Agg canvas, without pyplot (the global backend stays)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: Path, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` and print the path written."""
    fig.savefig(str(path), dpi=dpi, bbox_inches="tight")
    print(f"figure written to {path}")


def within_budget(
    where: str, max_draws: int | None, run: Callable[[], R], end: str = "\n"
) -> tuple[R, float] | None:
    """``(run(), seconds it took)``; or, when ``run`` raises :class:`DrawBudgetExceeded`, None
    after printing ``"{where}: stopped by --max-draws {max_draws}: {error}"`` (ended by
    ``end``): a demo reports a run over its budget and goes on without it."""
    start = time.perf_counter()
    try:
        result = run()
    except DrawBudgetExceeded as exc:
        print(f"{where}: stopped by --max-draws {max_draws}: {exc}", end=end)
        return None
    return result, time.perf_counter() - start
