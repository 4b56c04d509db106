"""Shared pieces of the benchmarks: known laws, a categorical ``draw``, the machine.

P^(1/T) and TV come from :mod:`implicit_temperature.demos.laws`, the law-helpers module the demos
and tests use too."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable

import torch

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
