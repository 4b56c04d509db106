"""Built-in plugin: the ``diffusion`` adapter and the image/mixture quantizers.

Registered through the same hooks as third-party plugins. Quantizer names:
``image_hash`` (:class:`~.keys.ImageHashQuantizer`, option ``hash_size``) and
``nearest_component`` (:class:`~.mixture.NearestComponentQuantizer`, option ``means``).
"""

from __future__ import annotations

from collections.abc import Callable

from ...plugins.hookspecs import hookimpl
from .adapter import DiffusionAdapter
from .keys import ImageHashQuantizer
from .mixture import NearestComponentQuantizer


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(DiffusionAdapter)


@hookimpl
def register_quantizers(register: Callable[..., None]) -> None:
    register("image_hash", ImageHashQuantizer)
    register("nearest_component", NearestComponentQuantizer)
