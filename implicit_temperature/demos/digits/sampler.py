"""The digits demo's sampler set-up, shared by the demo, ``benchmarks/`` and the tests: the
shipped pipeline with the shipped classifier as the quantizer, and the class law P of plain
draws. Importing this module does not import diffusers (the loading does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch

from ..laws import frequencies

if TYPE_CHECKING:
    from ...plugins import TemperatureSampler
    from .classifier import DigitLabeler

#: Outcomes of the class law: the ten digits.
DIGITS = 10


class DigitsSampler(NamedTuple):
    """The shipped digits pipeline as a :class:`TemperatureSampler` keyed by the shipped
    classifier (``sampler``), and that classifier (``classify``: images -> digits)."""

    sampler: TemperatureSampler
    classify: DigitLabeler

    def class_law(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(plain, p)``: ``n`` plain draws of the pipeline (``(n, 1, 8, 8)``, drawn with
        ``generator``, which advances) and their class law P (float64 ``(10,)``, the share of
        each digit the classifier sees)."""
        plain = self.sampler.adapter.draw(n, generator=generator)
        return plain, frequencies(self.classify(plain), DIGITS)


def load_digits_sampler(steps: int, *, batch_size: int = 1024) -> DigitsSampler:
    """The shipped pipeline and classifier, loaded offline, as a :class:`DigitsSampler` whose
    sampler runs ``steps`` DDIM steps per draw, ``batch_size`` images per pipeline call, with no
    progress bar. The pipeline is ``result.sampler.model``."""
    from ...plugins import TemperatureSampler
    from ...quantizers import ClassifierQuantizer
    from .classifier import load_classifier
    from .model import load_digits_pipeline

    pipe = load_digits_pipeline()
    classify = load_classifier()
    sampler = TemperatureSampler(
        pipe,
        quantizer=ClassifierQuantizer(classify),
        batch_size=batch_size,
        progress=False,
        num_inference_steps=steps,
    )
    return DigitsSampler(sampler, classify)
