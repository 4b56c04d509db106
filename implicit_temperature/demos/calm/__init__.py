"""The demo CALM model shipped with the package, its tokenizer, grammar and ``itemp demo calm``.

* :func:`load_demo_model`: the small demo model (trained on a synthetic grammar by
  ``scripts/train_calm.py``) and its tokenizer; :data:`DEMO_PROMPTS`.
* The model classes (:class:`CALM`, ...) mirror the structure of the reference implementation
  (backbone: a ``transformers.LlamaModel``), so the ``calm`` adapter drives them exactly as it
  drives a reference checkpoint.
* :mod:`.grammar`: the synthetic grammar and its exact next-chunk law.
"""

from .modeling import (
    CALM,
    Autoencoder,
    CALMConfig,
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
    "CALMConfig",
    "CharTokenizer",
    "ChunkDecoder",
    "ChunkEncoder",
    "MLPGenerator",
    "demo_model_record",
    "load_demo_model",
]
