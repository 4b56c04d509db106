"""Driving diffusers pipelines: the code the ``diffusion`` and ``flow_matching`` adapters share.

* :mod:`.detect` — recognise diffusers pipelines and flow-matching schedulers without importing
  diffusers.
* :mod:`.driver` — :class:`PipelineDriver`: ``driver(n, generator)`` in memory-sized chunked
  calls, one progress bar per temperature call, the pipeline's own settings left as they were.
* :mod:`.outputs` — whatever a pipeline returns, as one tensor ``(n, ...)``.
* :mod:`.keys` — the adapters' key function (:class:`AdapterKeys`) and default quantizer.
* :mod:`.adapter` — :class:`SampleAdapter`, the base class of both adapters.
* :mod:`.wrapper` — :func:`with_temperature` / :class:`TemperaturePipeline`, diffusers-native use
  (public as ``implicit_temperature.adapters.diffusion.with_temperature``).

This package registers nothing (the adapters' plugins do) and importing it does not import
diffusers. Dependencies point one way: the adapters import it; it imports ``plugins``,
``quantizers`` and ``core``, never an adapter.
"""

from .adapter import SampleAdapter, check_call_kwargs
from .detect import is_diffusion_pipeline, is_flow_matching_pipeline, is_flow_matching_scheduler
from .driver import PipelineDriver
from .keys import AdapterKeys, default_quantizer_for
from .outputs import samples_to_tensor
from .wrapper import TemperaturePipeline, images_to_output_type, with_temperature

__all__ = [
    "AdapterKeys",
    "PipelineDriver",
    "SampleAdapter",
    "TemperaturePipeline",
    "check_call_kwargs",
    "default_quantizer_for",
    "images_to_output_type",
    "is_diffusion_pipeline",
    "is_flow_matching_pipeline",
    "is_flow_matching_scheduler",
    "samples_to_tensor",
    "with_temperature",
]
