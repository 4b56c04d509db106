"""CALM adapter: temperature for Continuous Autoregressive Language Models (arXiv 2510.27688).

* :class:`CALMAdapter` (registered as ``calm``): next-chunk draws for B contexts, keys = the
  chunk's token ids, so temperature acts exactly on the chunk law.
* :func:`generate`: chunk-by-chunk decoding at any temperature with a KV cache.
* :func:`generate` takes transformers' keywords: ``attention_mask`` (left padding, see
  :func:`left_pad`), ``num_return_sequences``, ``do_sample=False`` / ``temperature=0`` (mode
  decoding), ``stop_strings``, ``stopping_criteria``, ``streamer``; per-output finish reasons.
* :class:`CALMGenerationMixin`, :func:`with_temperature_generate`: ``model.generate``-style use.
* :func:`pad_to_chunks`: pad a prompt up to whole chunks of K tokens, as the reference does.
* :func:`check_calm_model`, :func:`missing_calm_attributes`: what the adapter needs of a model.

The adapter only touches attributes of the reference CALM structure, so it drives the shipped demo
model (:mod:`implicit_temperature.demos.calm`) and reference checkpoints alike; see docs/calm.md.
"""

from .adapter import CALMAdapter, check_calm_model, missing_calm_attributes
from .generation import CALMGenerateOutput, generate
from .mixin import CALMGenerationMixin, with_temperature_generate
from .prompts import left_pad, pad_to_chunks

__all__ = [
    "CALMAdapter",
    "CALMGenerateOutput",
    "CALMGenerationMixin",
    "check_calm_model",
    "generate",
    "left_pad",
    "missing_calm_attributes",
    "pad_to_chunks",
    "with_temperature_generate",
]
