"""Shared pieces of the benchmarks: known laws, a categorical ``draw``, the machine.

P^(1/T) and TV come from :mod:`implicit_temperature.demos.laws`, the law-helpers module the demos
and tests use too."""

from __future__ import annotations

import datetime
import importlib
import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

#: The two known laws every section uses: one peaked, one heavy-tailed.
PEAKED = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
_ZIPF = torch.arange(1, 31, dtype=torch.float64) ** -1.1
ZIPF = _ZIPF / _ZIPF.sum()
LAWS: dict[str, torch.Tensor] = {
    "peaked [.5, .3, .15, .05]": PEAKED,
    "Zipf(1.1), 30 outcomes": ZIPF,
}


def categorical_draw(p: torch.Tensor) -> Callable[..., torch.Tensor]:
    """``draw(m, generator=None)`` -> LongTensor (m,) of outcome ids, i.i.d. ~ ``p``.

    Inverse-CDF sampling in float64, so every outcome keeps its exact probability.
    """
    cdf = torch.cumsum(p.double(), 0)
    cdf[-1] = 1.0
    last = p.numel() - 1

    def draw(m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(m, dtype=torch.float64, generator=generator)
        return torch.searchsorted(cdf, u, right=True).clamp_(max=last)

    return draw


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    """What the numbers were measured on: CPU, cores, threads, OS, Python, torch, CUDA, date."""
    info = {
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "CPU": _cpu_model(),
        "logical cores": str(os.cpu_count()),
        "torch threads (torch.get_num_threads)": str(torch.get_num_threads()),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "torch": torch.__version__,
        "CUDA": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available",
    }
    return info


#: The core's constants the pages quote (pilot sizes, auto's budget rule, the planner's grid),
#: with the modules that may define them (the core's layout may move them).
_CORE_CONSTANTS = (
    "PILOT_MIN",
    "PILOT_SHARE",
    "PILOT_BUDGET_SHARE",
    "AUTO_BUDGET_FACTOR",
    "AUTO_EXACT_SHARE",
    "GRID_STEP",
)
_CORE_MODULES = ("pilot", "decide", "api", "plan", "cost")


def core_constants() -> dict[str, float]:
    """The core's constants the benchmarks page quotes, read from the code (never retyped)."""
    found: dict[str, float] = {}
    for module in _CORE_MODULES:
        try:
            mod = importlib.import_module(f"implicit_temperature.core.{module}")
        except ImportError:
            continue
        for name in _CORE_CONSTANTS:
            if name not in found and hasattr(mod, name):
                found[name] = getattr(mod, name)
    missing = sorted(set(_CORE_CONSTANTS) - set(found))
    if missing:
        raise LookupError(f"core constants {missing} not found in implicit_temperature.core")
    return found
