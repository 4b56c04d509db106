"""Built-in plugin: registers the ``diffusion`` adapter (same hook as third parties)."""

from __future__ import annotations

from collections.abc import Callable

from ...plugins.hookspecs import hookimpl
from .adapter import DiffusionAdapter


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(DiffusionAdapter)
