"""Built-in plugin registering the ``calm`` adapter (through the same hook third parties use)."""

from __future__ import annotations

from collections.abc import Callable

from ...plugins.hookspecs import hookimpl
from .adapter import CALMAdapter


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(CALMAdapter)
