"""The ``diffusion`` adapter: temperature control for diffusers pipelines.

* :class:`DiffusionAdapter` (registered as ``"diffusion"``): any ``diffusers.DiffusionPipeline``
  whose scheduler is not a flow-matching one; see docs/diffusion.md.
* :class:`ImageHashQuantizer` (registered as ``"image_hash"``): the default quantizer for images.

Importing this package does not import diffusers. The shipped demo pipelines live in
:mod:`implicit_temperature.demos`.
"""

from .adapter import DiffusionAdapter, SampleAdapter
from .keys import ImageHashQuantizer

__all__ = [
    "DiffusionAdapter",
    "ImageHashQuantizer",
    "SampleAdapter",
]
