"""The ``flow_matching`` adapter: flow-matching pipelines and velocity fields, and its demo model.

* :class:`FlowMatchingAdapter` (registered as ``"flow_matching"``): diffusers pipelines whose
  scheduler is a flow-matching one, and velocity fields ``v(x, t)`` integrated from noise with a
  fixed-step Euler or Heun solver; see docs/diffusion.md.
* :class:`VelocityField`: a velocity field with its sample shape, recognised by
  ``TemperatureSampler`` without ``adapter=``.
* :func:`load_demo_pipeline`: the shipped flow-matching model of the 2-D demo mixture.

Importing this package does not import diffusers; the pipeline class loads on first access.
"""

from typing import Any

from .adapter import FlowMatchingAdapter
from .demo_model import DEMO_PIPELINE_PATH, load_demo_pipeline
from .velocity import SOLVERS, VelocityField, integrate

__all__ = [
    "DEMO_PIPELINE_PATH",
    "SOLVERS",
    "FlowMatchingAdapter",
    "MixtureFlowMatchingPipeline",
    "VelocityField",
    "integrate",
    "load_demo_pipeline",
]


def __getattr__(name: str) -> Any:
    if name == "MixtureFlowMatchingPipeline":
        from .pipeline import MixtureFlowMatchingPipeline

        return MixtureFlowMatchingPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
