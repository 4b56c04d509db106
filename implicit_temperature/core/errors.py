"""Exceptions raised by the core. Every message says what was wrong and how to fix it."""

from __future__ import annotations

from typing import Any


class ImplicitTemperatureError(Exception):
    """Base class of every error raised by implicit-temperature."""


class TemperatureWarning(UserWarning):
    """Base of every warning raised by implicit-temperature: the result is valid but may not
    mean what was asked (e.g. temperature had nothing to act on). Filter it with
    ``warnings.filterwarnings("ignore", category=implicit_temperature.TemperatureWarning)``."""


class InvalidTemperatureError(ImplicitTemperatureError, ValueError):
    """The temperature is not a finite real number > 0, or the method cannot reach it."""


class InvalidSeedError(ImplicitTemperatureError, ValueError):
    """An integer seed outside what a torch.Generator takes (64 bits)."""


class SamplerOutputError(ImplicitTemperatureError, ValueError):
    """``draw(m)`` returned something other than m samples (wrong length, shape, type, NaN)."""


class InvalidKeysError(ImplicitTemperatureError, ValueError):
    """Keys are not an integer tensor of shape (m,)/(m, d) (or (B, N)/(B, N, d))."""


class DrawBudgetExceeded(ImplicitTemperatureError, RuntimeError):
    """An exact run would exceed ``max_draws``. ``stats`` holds the progress made so far."""

    def __init__(self, message: str, stats: dict[str, Any]) -> None:
        super().__init__(message)
        self.stats = stats


class InvalidOptionError(ImplicitTemperatureError, ValueError):
    """A sampling option has a value outside its range (e.g. ``num_samples=0``)."""


class OptionTypeError(ImplicitTemperatureError, TypeError):
    """A sampling option has the wrong type (e.g. ``num_outputs=2.5``, ``plan=4``)."""


class UnknownOptionError(ImplicitTemperatureError, TypeError):
    """A keyword that the function it was passed to does not take (the message names it, where it
    was passed, the closest valid name and where it belongs if it belongs elsewhere)."""


class AccuracyWarning(TemperatureWarning):
    """The result's estimated TV to P^(1/T) exceeds the tolerance asked for (``tolerance=``), or
    cannot be estimated. The message gives the estimate, the temperature the output effectively
    corresponds to where that means something, and what reaching the tolerance would cost."""


class InaccurateResultError(ImplicitTemperatureError, RuntimeError):
    """``on_inaccurate="raise"``: no method reached the tolerance within the budget. ``result``
    holds the best attempt (with its ``accuracy``)."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result
