"""The adapter: how implicit-temperature drives a ``LoadedDie``."""

from __future__ import annotations

from typing import Any

import torch

from implicit_temperature import Adapter
from implicit_temperature.quantizers import resolve_quantizer

from .model import LoadedDie


class DiceAdapter(Adapter):
    """Adapter ``example-dice`` for :class:`LoadedDie` models.

    Options: ``quantizer`` (default ``"exact"``: every face is its own outcome; any name
    registered with ``register_quantizers``, a quantizer object or a callable works, e.g.
    ``"example-parity"`` to apply temperature to odd/even only) and ``quantizer_options`` (a dict
    of options for a registered name, e.g. ``quantizer="grid", quantizer_options={"cell_size":
    2}`` to pair the faces), the convention every adapter follows.
    """

    name = "example-dice"

    def __init__(
        self,
        model: LoadedDie,
        *,
        quantizer: Any = "exact",
        quantizer_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(model)
        self.quantizer = resolve_quantizer(quantizer, **(quantizer_options or {}))

    @classmethod
    def handles(cls, model: Any) -> bool:
        return isinstance(model, LoadedDie)

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` i.i.d. faces, LongTensor ``(n,)``, from one vectorised call."""
        return self.model.roll(n, generator=generator)

    def quantize(self, samples: torch.Tensor) -> torch.Tensor:
        return self.quantizer(samples)
