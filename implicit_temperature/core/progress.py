"""Progress reporting for long exact runs (``progress=True``): a tqdm bar when tqdm is installed,
else a log line (logger ``implicit_temperature.progress``) about every 10% or 10 s. Off by
default; the library never prints."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("implicit_temperature.progress")


class Progress:
    """Counts base draws against an expected total (None when unknown)."""

    def __init__(self, enabled: bool, desc: str) -> None:
        self.enabled = bool(enabled)
        self.desc = desc
        self.total: float | None = None
        self.bar: Any = None
        self.done = 0
        self._last_log = 0.0
        self._last_share = 0.0
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - depends on the environment
            logger.info("%s: tqdm is not installed, progress goes to this log", desc)
            return
        self.bar = tqdm(desc=desc, unit="draw", unit_scale=True, dynamic_ncols=True)

    def set_total(self, total: float | None) -> None:
        if not self.enabled or total is None or not total < float("inf"):
            return
        self.total = float(total)
        if self.bar is not None:
            self.bar.total = int(round(total))
            self.bar.refresh()

    def update(self, draws: int) -> None:
        """Report the draws spent so far (cumulative)."""
        if not self.enabled:
            return
        step = draws - self.done
        self.done = draws
        if self.bar is not None:
            if self.total is not None and self.bar.total is not None and draws > self.bar.total:
                self.bar.total = draws  # beyond the estimate: the bar keeps running
            self.bar.update(step)
            return
        now = time.monotonic()
        share = draws / self.total if self.total else 0.0
        if now - self._last_log >= 10.0 or share - self._last_share >= 0.1:
            self._last_log, self._last_share = now, share
            expected = f" of ~{self.total:.3g} expected" if self.total else ""
            logger.info("%s: %d draws%s", self.desc, draws, expected)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
