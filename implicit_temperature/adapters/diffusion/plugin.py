"""Built-in plugin: the ``diffusion`` adapter and the image quantizer.

Registered through the same hooks as third-party plugins. Quantizer name: ``image_hash``
(:class:`~.keys.ImageHashQuantizer`, option ``hash_size``).
"""

from __future__ import annotations

from collections.abc import Callable

from ...plugins.hookspecs import hookimpl
from .adapter import DiffusionAdapter
from .keys import ImageHashQuantizer


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(DiffusionAdapter)


@hookimpl
def register_quantizers(register: Callable[..., None]) -> None:
    register("image_hash", ImageHashQuantizer)
