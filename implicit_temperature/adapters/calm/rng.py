"""Seeding a generative head that takes no ``generator`` (the reference ``MLPGenerator.sample``).

Such a head draws its noise from torch's global RNG. To honour a ``generator=`` anyway,
:func:`seeded_global_rng` forks the global RNG state, seeds it from the generator, runs the head
and restores the state, with these guarantees:

* only the CPU generator and the generator of the model's own device are saved, seeded and
  restored (``torch.manual_seed`` would reseed every CUDA device while ``fork_rng`` restores only
  the forked ones, leaking a fixed seed into the others);
* the caller's global RNG state is the same afterwards as before (nothing leaks out);
* concurrent draws from several threads are serialised by one process-wide lock, so each one
  sees exactly the state it seeded: threaded results equal sequential ones.

Limitation: the lock only orders the draws that go through this module. Code in another thread
that uses torch's global RNG *at the same time* (``torch.rand`` without a generator) can consume
or perturb the seeded stream, and the draw's result then depends on timing. For full isolation
give the head a ``sample(hidden, generator=None)`` that draws its noise from ``generator``; the
adapter then never touches the global RNG.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_GLOBAL_RNG_LOCK = threading.RLock()


def _device_index(device: torch.device) -> int:
    if device.index is not None:
        return device.index
    module = getattr(torch, device.type)
    return int(module.current_device()) if hasattr(module, "current_device") else 0


def _seed_device(device: torch.device, seed: int) -> None:
    """Seed the default generator of ``device`` alone (never all devices of its kind)."""
    if device.type == "cpu":
        torch.default_generator.manual_seed(seed)
        return
    module = getattr(torch, device.type)
    generators = getattr(module, "default_generators", None)
    if generators:  # cuda, xpu: one default generator per device
        generators[_device_index(device)].manual_seed(seed)
    else:  # single-device backends (mps): manual_seed seeds that one device
        module.manual_seed(seed)


@contextlib.contextmanager
def seeded_global_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run the block with torch's global RNG seeded from ``seed`` (CPU and ``device`` only),
    under a process-wide lock, and restore the previous states afterwards."""
    device = torch.device(device)
    with _GLOBAL_RNG_LOCK:
        if device.type == "cpu":
            fork = torch.random.fork_rng(devices=[])
        else:
            fork = torch.random.fork_rng(devices=[_device_index(device)], device_type=device.type)
        with fork:
            torch.default_generator.manual_seed(seed)
            if device.type != "cpu":
                _seed_device(device, seed)
            yield
