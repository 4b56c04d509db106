"""``model.generate(...)``-style use of :func:`~implicit_temperature.adapters.calm.generate`.

* :class:`CALMGenerationMixin`: put it first among the bases of your own CALM class
  (``class MyCALM(CALMGenerationMixin, CALM)``) and ``model.generate(input_ids, temperature=0.5)``
  is this library's decoding.
* :func:`with_temperature_generate`: for a model whose own ``generate`` must keep working (the
  reference checkpoint's, which accepts only T = 1/n): a thin wrapper whose ``generate`` is ours
  and which forwards every other attribute (and calls) to the model, which is not modified.
"""

from __future__ import annotations

from typing import Any

import torch

from .adapter import check_calm_model
from .generation import CALMGenerateOutput, generate


class CALMGenerationMixin:
    """Gives a CALM-structured ``nn.Module`` subclass a transformers-style ``generate``."""

    def generate(self, input_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor | CALMGenerateOutput:
        """:func:`implicit_temperature.adapters.calm.generate` on this model (same keywords)."""
        return generate(self, input_ids, **kwargs)


class TemperatureGenerateWrapper:
    """A CALM model seen through ``.generate`` = this library's; everything else is the model's
    (attribute access and calls are forwarded; ``.model`` is the wrapped model)."""

    def __init__(self, model: Any) -> None:
        check_calm_model(model)
        self.model = model

    def generate(self, input_ids: torch.Tensor, **kwargs: Any) -> torch.Tensor | CALMGenerateOutput:
        """:func:`implicit_temperature.adapters.calm.generate` on the wrapped model."""
        return generate(self.model, input_ids, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def with_temperature_generate(model: Any) -> TemperatureGenerateWrapper:
    """``with_temperature_generate(model).generate(ids, temperature=0.3, do_sample=True)``; the
    model itself (and its own ``generate``) is left as it is."""
    return TemperatureGenerateWrapper(model)
