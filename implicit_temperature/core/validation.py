"""Argument checks shared by the public functions."""

from __future__ import annotations

import math
import numbers

import torch

from .errors import (
    InvalidArgumentTypeError,
    InvalidSeedError,
    InvalidTemperatureError,
)

# 1/T values within this relative distance of an integer are snapped to it, so that T = 1/3
# (whose float reciprocal is 3.0000000000000004 on some paths) uses the integer rule exactly.
_SNAP_RTOL = 1e-9


def check_temperature(temperature: object) -> float:
    """Return ``temperature`` as a float after checking it is a finite real number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        if isinstance(temperature, torch.Tensor) and temperature.numel() == 1:
            temperature = float(temperature)
        else:
            raise InvalidArgumentTypeError(
                f"temperature must be a real number > 0 (e.g. 0.5), got "
                f"{type(temperature).__name__} "
                f"{temperature!r}"
            )
    t = float(temperature)
    if math.isnan(t) or math.isinf(t) or t <= 0.0:
        raise InvalidTemperatureError(
            f"temperature must be a finite number > 0, got {t!r}; use e.g. 0.5 to sharpen, 1.0 for "
            "the model's own distribution, 2.0 to flatten"
        )
    return t


def inverse_temperature(t: float) -> float:
    """s = 1/T, snapped to the nearest integer when it is one up to float error.

    Defined for every positive float: for T below ~5.6e-309 (subnormal) 1/T overflows and
    ``inf`` is returned; the methods treat it as their T -> 0 limit (the batch method picks the
    most frequent outcome, the exact method refuses with a clear error).
    """
    s = 1.0 / t
    if not math.isfinite(s):
        return math.inf
    r = round(s)
    if r >= 1 and abs(s - r) <= _SNAP_RTOL * max(1.0, s):
        return float(r)
    return s


def make_generator(
    generator: torch.Generator | int | None, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A torch.Generator from ``generator`` (a Generator is used as is; an int seeds a new one;
    None seeds a new one from torch's global RNG, so ``torch.manual_seed`` makes runs
    repeatable)."""
    if isinstance(generator, torch.Generator):
        return generator
    if generator is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    elif isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        seed = int(generator)
        if not -(2**63) <= seed < 2**64:  # what torch.Generator.manual_seed takes
            raise InvalidSeedError(
                f"an integer seed must fit in 64 bits (0 <= seed < 2**64), got one of "
                f"{seed.bit_length()} bits; reduce it (e.g. seed % 2**64) or pass a "
                "torch.Generator"
            )
    else:
        raise InvalidArgumentTypeError(
            "generator must be a torch.Generator, an int seed or None, got "
            f"{type(generator).__name__}"
        )
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def uniform(
    shape: tuple[int, ...],
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Uniform(0, 1) numbers on ``device`` drawn from ``generator`` (whatever its device)."""
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=dtype)
    return u.to(device, non_blocking=True)
