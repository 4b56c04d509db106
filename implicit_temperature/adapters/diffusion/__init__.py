"""The ``diffusion`` adapter: temperature control for diffusers pipelines.

* :class:`DiffusionAdapter` (registered as ``"diffusion"``): any ``diffusers.DiffusionPipeline``
  whose scheduler is not a flow-matching one; see docs/diffusion.md.
* :func:`with_temperature` / :class:`TemperaturePipeline`: diffusers-native use,
  ``with_temperature(pipe)(temperature=0.5, num_images_per_prompt=4).images`` for any pipeline
  this adapter or the ``flow_matching`` adapter drives (defined in
  :mod:`implicit_temperature.adapters.pipelines`, the code both adapters share).

The default quantizer for images, ``image_hash``, is
:class:`implicit_temperature.quantizers.ImageHashQuantizer`. Importing this package does not
import diffusers. The shipped demo pipelines live in :mod:`implicit_temperature.demos`.
"""

from ..pipelines.wrapper import TemperaturePipeline, with_temperature
from .adapter import DiffusionAdapter

__all__ = [
    "DiffusionAdapter",
    "TemperaturePipeline",
    "with_temperature",
]
