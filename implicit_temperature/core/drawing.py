"""Calling the user's ``draw`` and checking what comes back."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from .keys import KeyFunction
from .samples import Samples, wrap_draw_output


def accepts_generator(draw: Callable[..., Any]) -> bool:
    """True when ``draw`` takes a ``generator`` keyword (or **kwargs)."""
    try:
        params = inspect.signature(draw).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "generator" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class DrawSource:
    """``draw`` plus its key function, counting base draws and model calls.

    ``source(m)`` returns ``(samples, keys)``: :class:`Samples` (B, m, ...) and int64 keys
    (B, m, d). ``draws`` counts B * m per call (what the model produced).
    """

    def __init__(
        self,
        draw: Callable[..., Any],
        key: Callable[[Any], Any] | None,
        *,
        batched: bool,
        generator: torch.Generator,
    ) -> None:
        if not callable(draw):
            raise TypeError(
                f"draw must be a callable draw(m) -> m samples, got {type(draw).__name__}"
            )
        self.draw = draw
        self.keys = KeyFunction(key, batched)
        self.batched = batched
        self.generator = generator
        self._pass_generator = accepts_generator(draw)
        self.num_problems: int | None = None if batched else 1
        self.draws = 0
        self.calls = 0

    def __call__(self, m: int) -> tuple[Samples, torch.Tensor]:
        raw = self.draw(m, generator=self.generator) if self._pass_generator else self.draw(m)
        samples = wrap_draw_output(raw, m, self.batched, self.num_problems)
        self.num_problems = samples.num_problems
        keys = self.keys(raw, samples)
        self.calls += 1
        self.draws += samples.num_problems * m
        return samples, keys
