"""The ``diffusion`` adapter: temperature control for diffusers pipelines, and its demo model.

* :class:`DiffusionAdapter` (registered as ``"diffusion"``): any ``diffusers.DiffusionPipeline``
  whose scheduler is not a flow-matching one; see docs/diffusion.md.
* :func:`load_demo_pipeline`: the shipped DDPM model of a 2-D Gaussian mixture with known
  weights (``mixture_means``, ``mixture_weights``), loaded offline.
* :class:`ImageHashQuantizer`, :class:`NearestComponentQuantizer`: the default quantizers.

Importing this package does not import diffusers; the pipeline classes load on first access.
"""

from typing import Any

from .adapter import DiffusionAdapter, SampleAdapter
from .demo_model import DEMO_PIPELINE_PATH, load_demo_pipeline
from .keys import ImageHashQuantizer
from .mixture import (
    DEMO_MEANS,
    DEMO_STD,
    DEMO_WEIGHTS,
    NearestComponentQuantizer,
    sample_mixture,
    tempered_weights,
)

_LAZY = {
    "MixtureDDPMPipeline": "pipeline",
    "MixturePipelineOutput": "pipeline",
    "MixturePipelineBase": "pipeline",
    "MLPDenoiser": "models",
}

__all__ = [
    "DEMO_MEANS",
    "DEMO_PIPELINE_PATH",
    "DEMO_STD",
    "DEMO_WEIGHTS",
    "DiffusionAdapter",
    "ImageHashQuantizer",
    "MLPDenoiser",
    "MixtureDDPMPipeline",
    "MixturePipelineBase",
    "MixturePipelineOutput",
    "NearestComponentQuantizer",
    "SampleAdapter",
    "load_demo_pipeline",
    "sample_mixture",
    "tempered_weights",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
