"""Progress of pipeline draws without side effects on the user's pipeline.

* :func:`pipeline_bar_silenced` — while the adapter calls a pipeline, its own per-call tqdm bar
  (diffusers' ``progress_bar``) is turned off, and the pipeline's progress-bar configuration is
  put back exactly as it was afterwards (also when the call raises). Wrapping or sampling a
  pipeline therefore never changes ``pipe.set_progress_bar_config``.
* :class:`CallProgress` — one tqdm bar for one temperature call (``tpipe(temperature=...)``),
  over the samples the pipeline draws for it (pilot and every internal draw included), labelled
  with the temperature and method. Its total is set when the call's draws are known before it
  starts (the batch method: B x outputs x N); for the exact method and ``auto`` the number of
  draws is random and decided inside the core, so the bar counts up and its total is set to the
  draws spent when the call ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Seconds a ``progress=None`` bar waits before it appears (short calls show no bar).
DEFAULT_DELAY_S = 1.0

_MISSING = object()


@contextmanager
def pipeline_bar_silenced(pipe: Any, keep: bool = False) -> Iterator[None]:
    """Turn the pipeline's own progress bar off for the duration of the block, then restore its
    configuration (the ``_progress_bar_config`` dict diffusers keeps, or its absence).
    ``keep=True`` (the adapters' ``pipeline_progress_bar=True``) leaves the bar alone."""
    if keep or not callable(getattr(pipe, "set_progress_bar_config", None)):
        yield
        return
    saved = pipe.__dict__.get("_progress_bar_config", _MISSING)
    previous = dict(saved) if isinstance(saved, dict) else saved
    pipe.set_progress_bar_config(
        **{**(previous if isinstance(previous, dict) else {}), "disable": True}
    )
    try:
        yield
    finally:
        if previous is _MISSING:
            pipe.__dict__.pop("_progress_bar_config", None)
        else:
            pipe._progress_bar_config = previous


class CallProgress:
    """One tqdm bar over the samples one temperature call draws.

    Args:
        show: True (a bar from the start), False (none) or None (a bar that appears only when
            the call lasts longer than :data:`DEFAULT_DELAY_S`).
        total: the samples the call will draw when known in advance, else None.
        desc: the label, e.g. ``"T=0.5 batch N=200"``.
    """

    def __init__(self, show: bool | None, *, total: int | None, desc: str) -> None:
        self.drawn = 0
        self.bar: Any = None
        if show is False:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total,
            desc=desc,
            unit="sample",
            unit_scale=True,
            dynamic_ncols=True,
            delay=0.0 if show else DEFAULT_DELAY_S,
        )

    def update(self, count: int) -> None:
        """``count`` more samples were drawn."""
        self.drawn += count
        if self.bar is None:
            return
        if self.bar.total is not None and self.drawn > self.bar.total:
            self.bar.total = self.drawn
        self.bar.update(count)

    def close(self) -> None:
        """End the bar; an unknown total becomes the samples drawn, so the bar ends complete."""
        if self.bar is None:
            return
        if self.bar.total is None:
            self.bar.total = self.drawn
            self.bar.refresh()
        self.bar.close()
        self.bar = None
