"""The adapter base class: how one model family's samples are drawn and compared."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..core.errors import InvalidArgumentTypeError


class Adapter:
    """Base class (and protocol) for model adapters.

    Contract:

    * ``name`` (class attribute, str): the name users pass as ``adapter=`` and that
      ``itemp plugins`` lists.
    * ``handles(model) -> bool`` (classmethod): True when this adapter can drive ``model``. Keep it
      specific: ``TemperatureSampler(model)`` refuses to guess when several adapters say yes.
    * ``__init__(model, **options)``: options are adapter specific (quantizer, context, call
      kwargs, batch sizes). Quantizers come as ``quantizer=`` (a registered name, a quantizer
      object or a callable) with ``quantizer_options=`` (a dict for a registered name), passed
      through :func:`implicit_temperature.quantizers.resolve_quantizer`. Keep the keywords
      explicit: ``TemperatureSampler`` then reports an unknown one with the closest valid name.
    * ``draw(n, generator=None)``: ``n`` i.i.d. samples from the model, in as few model calls as
      memory allows. Unbatched adapters return leading dim ``n``; adapters with ``batched = True``
      run ``num_problems`` independent problems (e.g. B prompts) at once and return ``(B, n, ...)``.
      ``generator`` is a ``torch.Generator``: the same generator state gives the same samples.
      It may live on another device than the model (int seeds give a CPU generator): draw the
      noise on ``generator.device`` and move it, as diffusers' ``randn_tensor`` does.
    * Optional, batched adapters: ``draw(n, generator=None, active=None)`` where ``active`` is a
      bool tensor (B,): return ``(B_active, n, ...)`` for those problems only. The exact sampler
      passes it when some problems are done, so their draws are not computed.
    * ``quantize(samples) -> LongTensor``: keys; equal keys mean the same outcome. Shape
      ``(n,)``/``(n, d)``, or ``(B, n)``/``(B, n, d)`` when batched.
    * Optional: ``sample_to_json(sample) -> JSON value | None``: one sample (one row of what
      ``draw`` returned, after the leading ``n``) as it goes into a job's ``results.jsonl``
      (field ``outputs[k].sample``), e.g. a string for text samples. None writes only its key.
      The default (:func:`implicit_temperature.jobs.sampling.default_sample_to_json`) writes
      numeric tensors of at most 16 numbers and strings; images ``(C, H, W)`` are always
      written as PNG files instead.
    """

    name: ClassVar[str] = ""
    batched: bool = False

    def __init__(self, model: Any, **options: Any) -> None:
        if options:
            raise InvalidArgumentTypeError(
                f"adapter {self.name!r} takes no options, got {sorted(options)}; "
                "check the adapter's documentation for the options it accepts"
            )
        self.model = model

    @classmethod
    def handles(cls, model: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError(f"{cls.__name__}.handles(model) must be implemented")

    @property
    def num_problems(self) -> int | None:
        """B, the number of independent problems a batched adapter runs at once (else None)."""
        return None

    def draw(self, n: int, generator: torch.Generator | None = None) -> Any:  # pragma: no cover
        raise NotImplementedError(
            f"{type(self).__name__}.draw(n, generator=None) must be implemented"
        )

    def quantize(self, samples: Any) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.quantize(samples) must be implemented")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} adapter {self.name!r} for {type(self.model).__name__}>"
