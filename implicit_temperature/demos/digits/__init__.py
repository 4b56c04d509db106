"""The "digits" demo: a tiny DDPM on 8x8 handwritten digits with an imbalanced class mix, and a
digit classifier, so that temperature acts on "which digit" (``itemp demo digits``).

Importing this package does not import diffusers.
"""

from .classifier import DigitClassifier, DigitLabeler, held_out_accuracy, load_classifier
from .model import DEFAULT_INFERENCE_STEPS, DIGIT_MIX, load_digits_pipeline, sample_digits
from .sampler import DigitsSampler, load_digits_sampler

__all__ = [
    "DEFAULT_INFERENCE_STEPS",
    "DIGIT_MIX",
    "DigitClassifier",
    "DigitLabeler",
    "DigitsSampler",
    "held_out_accuracy",
    "load_classifier",
    "load_digits_pipeline",
    "load_digits_sampler",
    "sample_digits",
]
