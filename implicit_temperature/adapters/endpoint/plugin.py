"""Built-in plugin registering the ``endpoint`` adapter (through the hook third parties use)."""

from __future__ import annotations

from collections.abc import Callable

from ...plugins.hookspecs import hookimpl
from .adapter import EndpointAdapter


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(EndpointAdapter)
