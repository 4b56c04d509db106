"""Sampling a plain velocity field v(x, t) with a fixed-step Euler or Heun solver.

Convention (Lipman et al. 2023, rectified flow): t runs from 0 (standard Gaussian noise) to 1
(data), and ``dx/dt = v(x, t)``. ``v`` is called as ``v(x, t)`` with ``x`` of shape
``(m, *sample_shape)`` and ``t`` a float tensor of shape ``(m,)`` (all entries equal). Models
trained with the opposite convention (diffusers: sigma = 1 is noise, timestep = 1000 * sigma,
velocity noise - data) can be wrapped: ``lambda x, t: -net(x, 1000 * (1 - t))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ...core.errors import InvalidArgumentError
from ...core.options import positive_int

SOLVERS = ("euler", "heun")
#: Samples per call of a velocity field when ``batch_size`` is not given.
VELOCITY_BATCH_SIZE = 1024


@dataclass(frozen=True)
class VelocityField:
    """A velocity field packaged with its sample shape, so ``TemperatureSampler`` recognises it.

    ``TemperatureSampler(VelocityField(net, sample_shape=(2,)))`` picks the ``flow_matching``
    adapter; a bare callable needs ``TemperatureSampler(net, adapter="flow_matching",
    sample_shape=(2,))`` (a bare callable could be anything, so no adapter claims it).
    """

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    sample_shape: tuple[int, ...]

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.fn(x, t)


@torch.no_grad()
def integrate(
    velocity: Callable[[torch.Tensor, torch.Tensor], Any],
    noise: torch.Tensor,
    *,
    num_steps: int,
    solver: str = "euler",
) -> torch.Tensor:
    """Integrate ``dx/dt = v(x, t)`` from t = 0 (``noise``) to t = 1 in ``num_steps`` equal steps.

    Euler: 1 evaluation per step (first order). Heun: 2 per step (second order; the final step
    uses the trapezoid on both ends). Deterministic given ``noise``.
    """
    if solver not in SOLVERS:
        raise InvalidArgumentError(f"solver must be one of {SOLVERS}, got {solver!r}")
    x = noise
    m = x.shape[0]
    dt = 1.0 / num_steps
    for i in range(num_steps):  # loop over solver steps; each step is one batched call
        t = torch.full((m,), i * dt, device=x.device, dtype=x.dtype)
        v = _check(velocity(x, t), x)
        if solver == "euler":
            x = x + dt * v
        else:
            x_pred = x + dt * v
            v_next = _check(velocity(x_pred, t + dt), x)
            x = x + 0.5 * dt * (v + v_next)
    return x


def _check(v: Any, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or v.shape != x.shape:
        shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise InvalidArgumentError(
            f"the velocity field returned {shape} for x of shape {tuple(x.shape)}; v(x, t) must "
            "return a tensor shaped like x (check sample_shape=, and that v takes t of shape (m,))"
        )
    return v


class VelocityFieldDriver:
    """``driver(n, generator)``: n samples ``(n, *sample_shape)`` by integrating from noise."""

    def __init__(
        self,
        velocity: Callable[[torch.Tensor, torch.Tensor], Any],
        *,
        sample_shape: tuple[int, ...],
        num_steps: int,
        solver: str,
        batch_size: int,
        device: str | torch.device | None,
        dtype: torch.dtype,
        progress: bool | None,
    ) -> None:
        if solver not in SOLVERS:
            raise InvalidArgumentError(f"solver must be one of {SOLVERS}, got {solver!r}")
        num_steps = positive_int("num_steps", num_steps)
        batch_size = positive_int("batch_size", batch_size)
        self.velocity = velocity
        self.sample_shape = tuple(int(s) for s in sample_shape)
        self.num_steps = num_steps
        self.solver = solver
        self.batch_size = batch_size
        if device is None and isinstance(velocity, torch.nn.Module):
            param = next(velocity.parameters(), None)
            device = param.device if param is not None else None
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.progress = progress

    num_problems = None

    def __call__(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        n = positive_int("n", n)
        chunks = [min(self.batch_size, n - i) for i in range(0, n, self.batch_size)]
        show = self.progress if self.progress is not None else len(chunks) >= 4
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, unit="sample", desc="velocity field")
        parts = []
        try:
            for count in chunks:  # memory-sized chunks, not samples
                gen_device = generator.device if generator is not None else self.device
                noise = torch.randn(
                    (count, *self.sample_shape),
                    generator=generator,
                    device=gen_device,
                    dtype=self.dtype,
                ).to(self.device)
                parts.append(
                    integrate(self.velocity, noise, num_steps=self.num_steps, solver=self.solver)
                )
                if bar is not None:
                    bar.update(count)
        finally:
            if bar is not None:
                bar.close()
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        if out.is_floating_point() and bool(torch.isnan(out).any()):
            from ...core import SamplerOutputError

            raise SamplerOutputError(
                "the velocity field produced NaN samples; check that v(x, t) is finite for t in "
                "[0, 1], increase num_steps or use solver='heun', and use float32 on CPU"
            )
        return out
