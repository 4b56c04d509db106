"""Signals while ``itemp`` starts: noted, not raised, until the heavy imports are done.

Standard library only: ``implicit_temperature/__init__.py`` installs this as soon as the package
is imported by ``python -m implicit_temperature`` or the ``itemp`` script (torchrun included), so
that only the interpreter's own start-up precedes it.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


class Signals:
    """SIGINT and SIGTERM while ``itemp`` starts (Python, torch and model imports) are noted,
    not raised: an interrupt inside an import leaves half-initialised modules (misleading import
    errors, even a native abort). Once the imports are done :meth:`raise_from_now` turns them
    into ``KeyboardInterrupt`` (raised at once for one noted before), which ``main`` reports in
    one line with exit status 130."""

    def __init__(self) -> None:
        self.noted: int | None = None
        self.previous: dict[int, Any] = {}

    def defer(self) -> None:
        """Note signals from now on (idempotent: a signal noted earlier is kept)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            if sig in self.previous:
                continue
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # ignored by whoever started us (nohup, a background job): keep it so
            try:
                self.previous.setdefault(sig, signal.signal(sig, self._note))
            except ValueError:  # not the main thread: leave signals alone
                return

    def _note(self, signum: int, frame: Any) -> None:
        self.noted = signum

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    def raise_from_now(self) -> None:
        if not self.previous:
            return
        for sig in self.previous:
            signal.signal(sig, self._raise)
        if self.noted is not None:
            self.noted = None
            raise KeyboardInterrupt

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()


SIGNALS = Signals()


def started_as_cli() -> bool:
    """True when this process is ``python -m implicit_temperature`` or the ``itemp`` script."""
    argv = list(getattr(sys, "orig_argv", []))
    pairs = zip(argv, argv[1:], strict=False)
    as_module = any(a == "-m" and b == "implicit_temperature" for a, b in pairs)
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return as_module or script in ("itemp", "itemp.exe")
