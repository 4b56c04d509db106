"""The ``flow_matching`` adapter: flow-matching pipelines and velocity fields.

* :class:`FlowMatchingAdapter` (registered as ``"flow_matching"``): diffusers pipelines whose
  scheduler is a flow-matching one, and velocity fields ``v(x, t)`` integrated from noise with a
  fixed-step Euler or Heun solver; see docs/diffusion.md.
* :func:`with_temperature`: the same diffusers-native wrapper as in the ``diffusion`` package
  (``with_temperature(pipe)(temperature=0.5, ...).images``).
* :class:`VelocityField`: a velocity field with its sample shape, recognised by
  ``TemperatureSampler`` without ``adapter=``.

Importing this package does not import diffusers. The shipped demo pipelines live in
:mod:`implicit_temperature.demos`.
"""

from ..pipelines.wrapper import TemperaturePipeline, with_temperature
from .adapter import FlowMatchingAdapter
from .velocity import SOLVERS, VelocityField, integrate

__all__ = [
    "SOLVERS",
    "FlowMatchingAdapter",
    "TemperaturePipeline",
    "VelocityField",
    "integrate",
    "with_temperature",
]
