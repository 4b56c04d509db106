"""CALM adapter: temperature for Continuous Autoregressive Language Models (arXiv 2510.27688).

* :class:`CALMAdapter` (registered as ``calm``): next-chunk draws for B contexts, keys = the
  chunk's token ids, so temperature acts exactly on the chunk law.
* :func:`generate`: chunk-by-chunk decoding at any temperature with a KV cache.
* :func:`load_demo_model`: the small demo model shipped with the package (trained on a synthetic
  grammar by ``scripts/train_calm.py``) and its tokenizer; :data:`DEMO_PROMPTS`.
* The model classes (:class:`CALM`, ...) mirror the reference structure; see docs/calm.md.
"""

from .adapter import CALMAdapter, check_calm_model, missing_calm_attributes
from .generation import CALMGenerateOutput, generate
from .modeling import (
    CALM,
    Autoencoder,
    BackboneOutput,
    CALMConfig,
    CausalTransformer,
    ChunkDecoder,
    ChunkEncoder,
    MLPGenerator,
)
from .pretrained import DEMO_PROMPTS, demo_model_record, load_demo_model
from .tokenizer import CharTokenizer

__all__ = [
    "CALM",
    "DEMO_PROMPTS",
    "Autoencoder",
    "BackboneOutput",
    "CALMAdapter",
    "CALMConfig",
    "CALMGenerateOutput",
    "CausalTransformer",
    "CharTokenizer",
    "ChunkDecoder",
    "ChunkEncoder",
    "MLPGenerator",
    "check_calm_model",
    "demo_model_record",
    "generate",
    "load_demo_model",
    "missing_calm_attributes",
]
