"""Quantizers: turn samples into integer keys, so that "the same outcome" is well defined.

Temperature acts on the distribution over keys: samples with equal keys are one outcome. Built-in
quantizers (registered through the ``register_quantizers`` hook, like third-party ones):

* ``exact`` (:class:`ExactQuantizer`): the sample itself; discrete outputs; loses nothing.
* ``grid`` (:class:`GridQuantizer`): ``floor((x - origin) / cell_size)``; few continuous dims.
* ``codebook`` (:class:`CodebookQuantizer`): nearest k-means centroid, ``fit`` on a pilot batch;
  continuous outputs with many dims.
* ``classifier`` (:class:`ClassifierQuantizer`): any function returning integer labels.
* ``nearest_component`` (:class:`NearestComponentQuantizer`): index of the nearest of K given
  means (option ``means``); mixtures with known components.
* ``image_hash`` (:class:`ImageHashQuantizer`): average hash of a downsampled image (option
  ``hash_size``); the pipeline adapters' default for images, see its limits.
* answer keys for texts (:mod:`.answers`): ``final_number``, ``choice_letter``,
  ``normalized_text``, ``regex`` (also ``"regex:<pattern>"``) and ``answer`` (a user function).

:func:`resolve_quantizer` turns a name, a quantizer object or a plain callable into a quantizer.
Every quantizer maps ``(n, ...)`` -> ``(n,)``/``(n, d)`` keys, and ``(B, n, ...)`` ->
``(B, n)``/``(B, n, d)`` with ``batched=True``. See docs/plugins.md.

This package imports only torch, numpy and the plugins layer (never an adapter).
"""

from .answers import (
    NO_ANSWER,
    AnswerQuantizer,
    CallableAnswer,
    ChoiceLetter,
    FinalNumber,
    NormalizedText,
    RegexAnswer,
    answer_id,
)
from .base import Quantizer, QuantizerError
from .classifier import ClassifierQuantizer
from .codebook import CodebookQuantizer, kmeans, nearest_code
from .exact import ExactQuantizer
from .grid import GridQuantizer
from .image_hash import ImageHashQuantizer
from .nearest_component import NearestComponentQuantizer
from .resolve import CallableQuantizer, quantize, resolve_quantizer

__all__ = [
    "NO_ANSWER",
    "AnswerQuantizer",
    "CallableAnswer",
    "ChoiceLetter",
    "FinalNumber",
    "NormalizedText",
    "RegexAnswer",
    "answer_id",
    "CallableQuantizer",
    "ClassifierQuantizer",
    "CodebookQuantizer",
    "ExactQuantizer",
    "GridQuantizer",
    "ImageHashQuantizer",
    "NearestComponentQuantizer",
    "Quantizer",
    "QuantizerError",
    "kmeans",
    "nearest_code",
    "quantize",
    "resolve_quantizer",
]
