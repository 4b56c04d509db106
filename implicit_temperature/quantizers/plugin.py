"""Registers the built-in quantizers through the same hook third-party plugins use."""

from __future__ import annotations

from collections.abc import Callable

from ..plugins.hookspecs import hookimpl
from .classifier import ClassifierQuantizer
from .codebook import CodebookQuantizer
from .exact import ExactQuantizer
from .grid import GridQuantizer
from .image_hash import ImageHashQuantizer
from .nearest_component import NearestComponentQuantizer

BUILTIN_QUANTIZERS = (
    ExactQuantizer,
    GridQuantizer,
    CodebookQuantizer,
    ClassifierQuantizer,
    NearestComponentQuantizer,
    ImageHashQuantizer,
)


@hookimpl
def register_quantizers(register: Callable[..., None]) -> None:
    """``exact``, ``grid``, ``codebook``, ``classifier``, ``nearest_component``, ``image_hash``:
    each class is its own factory."""
    for cls in BUILTIN_QUANTIZERS:
        register(cls.name, cls)
