"""The shipped 2-D Gaussian-mixture demo pipelines (DDPM and flow matching) and their demos.

* :func:`load_ddpm_pipeline`, :func:`load_flow_pipeline`: the shipped pipelines, loaded offline
  (trained by ``scripts/train_diffusion_demo.py`` on the mixture below).
* :data:`DEMO_MEANS`, :data:`DEMO_WEIGHTS`, :data:`DEMO_STD`, :func:`sample_mixture`,
  :func:`tempered_weights`: the mixture itself and its law at temperature T.
* ``itemp demo diffusion`` / ``itemp demo flow``: :mod:`.diffusion_demo`, :mod:`.flow_demo`.

Importing this package does not import diffusers; the pipeline classes load on first access.
"""

from typing import Any

from .loading import DDPM_PIPELINE_PATH, FLOW_PIPELINE_PATH, load_ddpm_pipeline, load_flow_pipeline
from .mixture import (
    DEMO_MEANS,
    DEMO_STD,
    DEMO_WEIGHTS,
    NearestComponentQuantizer,
    sample_mixture,
    tempered_weights,
)

_LAZY = {
    "MixtureDDPMPipeline": "ddpm_pipeline",
    "MixturePipelineOutput": "ddpm_pipeline",
    "MixturePipelineBase": "ddpm_pipeline",
    "MixtureFlowMatchingPipeline": "flow_pipeline",
    "MLPDenoiser": "models",
}

__all__ = [
    "DDPM_PIPELINE_PATH",
    "DEMO_MEANS",
    "DEMO_STD",
    "DEMO_WEIGHTS",
    "FLOW_PIPELINE_PATH",
    "MLPDenoiser",
    "MixtureDDPMPipeline",
    "MixtureFlowMatchingPipeline",
    "MixturePipelineBase",
    "MixturePipelineOutput",
    "NearestComponentQuantizer",
    "load_ddpm_pipeline",
    "load_flow_pipeline",
    "sample_mixture",
    "tempered_weights",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
