"""implicit-temperature: temperature control for generative models that only hand out samples.

Public contract (see docs/algorithms.md):

* :func:`temperature_sample` — draw from P^(1/T) using only draws from P (exact for T <= 1,
  batch approximation for any T > 0, or automatic choice).
* :func:`select_from_batch` — the vectorised batch selection rule over B problems of N keys.
* :class:`TemperatureSampler` — the same for a model, through an adapter plugin.
* :data:`hookimpl` — the marker third-party plugins use.

The names below are imported on first use (PEP 562), so ``import implicit_temperature`` and the
``itemp`` command line (``itemp --help``) do not import torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "Accuracy": ".core",
    "AccuracyWarning": ".core",
    "BatchSelection": ".core",
    "Diagnostics": ".core",
    "DrawBudgetExceeded": ".core",
    "ImplicitTemperatureError": ".core",
    "InaccurateResultError": ".core",
    "InvalidKeysError": ".core",
    "InvalidPlanError": ".core",
    "InvalidTemperatureError": ".core",
    "SamplerOutputError": ".core",
    "TemperatureResult": ".core",
    "TemperatureWarning": ".core",
    "batch_selection": ".core",
    "batch_tv": ".core",
    "estimate": ".core",
    "expected_exact_draws": ".core",
    "select_from_batch": ".core",
    "selection_probabilities": ".core",
    "temperature_sample": ".core",
    "Adapter": ".plugins",
    "TemperatureSampler": ".plugins",
    "hookimpl": ".plugins",
    "hookspec": ".plugins",
    "UnknownOptionError": ".plugins.options",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .core import (  # noqa: F401
        Accuracy,
        AccuracyWarning,
        BatchSelection,
        Diagnostics,
        DrawBudgetExceeded,
        ImplicitTemperatureError,
        InaccurateResultError,
        InvalidKeysError,
        InvalidPlanError,
        InvalidTemperatureError,
        SamplerOutputError,
        TemperatureResult,
        TemperatureWarning,
        batch_selection,
        batch_tv,
        estimate,
        expected_exact_draws,
        select_from_batch,
        selection_probabilities,
        temperature_sample,
    )
    from .plugins import Adapter, TemperatureSampler, hookimpl, hookspec  # noqa: F401
    from .plugins.options import UnknownOptionError  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
