"""The ``diffusion`` adapter: temperature control for diffusers pipelines.

* :class:`DiffusionAdapter` (registered as ``"diffusion"``): any ``diffusers.DiffusionPipeline``
  whose scheduler is not a flow-matching one; see docs/diffusion.md.
* :class:`ImageHashQuantizer` (registered as ``"image_hash"``): the default quantizer for images.
* :func:`with_temperature` / :class:`TemperaturePipeline`: diffusers-native use,
  ``with_temperature(pipe)(temperature=0.5, num_images_per_prompt=4).images`` for any pipeline
  this adapter or the ``flow_matching`` adapter drives.

Importing this package does not import diffusers. The shipped demo pipelines live in
:mod:`implicit_temperature.demos`.
"""

from .adapter import DiffusionAdapter, SampleAdapter
from .keys import ImageHashQuantizer
from .wrapper import TemperaturePipeline, with_temperature

__all__ = [
    "DiffusionAdapter",
    "ImageHashQuantizer",
    "SampleAdapter",
    "TemperaturePipeline",
    "with_temperature",
]
