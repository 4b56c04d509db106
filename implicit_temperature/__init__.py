"""implicit-temperature: temperature control for generative models that only hand out samples.

Public contract (see docs/algorithms.md):

* :func:`temperature_sample` — draw from P^(1/T) using only draws from P (exact for T <= 1,
  batch approximation for any T > 0, or automatic choice).
* :func:`select_from_batch` — the vectorised batch selection rule over B problems of N keys.
* :class:`TemperatureSampler` — the same for a model, through an adapter plugin.
* :data:`hookimpl` — the marker third-party plugins use.
"""

from .core import (
    BatchSelection,
    Diagnostics,
    DrawBudgetExceeded,
    ImplicitTemperatureError,
    InvalidKeysError,
    InvalidTemperatureError,
    SamplerOutputError,
    TemperatureResult,
    TemperatureWarning,
    batch_selection,
    expected_exact_draws,
    select_from_batch,
    selection_probabilities,
    temperature_sample,
)
from .plugins import Adapter, TemperatureSampler, hookimpl, hookspec
from .plugins.options import UnknownOptionError

__all__ = [
    "Adapter",
    "BatchSelection",
    "Diagnostics",
    "DrawBudgetExceeded",
    "ImplicitTemperatureError",
    "InvalidKeysError",
    "InvalidTemperatureError",
    "SamplerOutputError",
    "TemperatureResult",
    "TemperatureSampler",
    "TemperatureWarning",
    "UnknownOptionError",
    "batch_selection",
    "expected_exact_draws",
    "hookimpl",
    "hookspec",
    "select_from_batch",
    "selection_probabilities",
    "temperature_sample",
]

__version__ = "0.1.0"
