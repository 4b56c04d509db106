"""The module the ``implicit_temperature`` entry point names: hook implementations only."""

from __future__ import annotations

from collections.abc import Callable

import torch

import implicit_temperature

from .adapter import DiceAdapter


@implicit_temperature.hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    register(DiceAdapter)


def parity(samples: torch.Tensor) -> torch.Tensor:
    """Key 0 for even faces, 1 for odd faces: LongTensor (n,)."""
    return torch.as_tensor(samples).long() % 2


def make_parity_quantizer() -> Callable[[torch.Tensor], torch.Tensor]:
    """Factory of the quantizer ``example-parity`` (takes no options)."""
    return parity


@implicit_temperature.hookimpl
def register_quantizers(register: Callable[..., None]) -> None:
    register("example-parity", make_parity_quantizer)
