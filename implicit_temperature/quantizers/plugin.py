"""Registers the built-in quantizers through the same hook third-party plugins use."""

from __future__ import annotations

from collections.abc import Callable

from ..plugins.hookspecs import hookimpl
from .answers import ANSWER_QUANTIZERS
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
    *ANSWER_QUANTIZERS,
)


@hookimpl
def register_quantizers(register: Callable[..., None]) -> None:
    """``exact``, ``grid``, ``codebook``, ``classifier``, ``nearest_component``, ``image_hash``
    and the answer keys ``final_number``, ``choice_letter``, ``normalized_text``, ``regex``,
    ``answer``: each class is its own factory."""
    for cls in BUILTIN_QUANTIZERS:
        register(cls.name, cls)
