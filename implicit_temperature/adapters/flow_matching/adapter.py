"""The ``flow_matching`` adapter: flow-matching diffusers pipelines and plain velocity fields.

* A ``diffusers.DiffusionPipeline`` whose scheduler is a flow-matching one
  (``FlowMatchEulerDiscreteScheduler``, ``FlowMatchHeunDiscreteScheduler``, ...) is driven exactly
  like the ``diffusion`` adapter drives other pipelines (chunked calls, generator, prompts).
* A velocity field ``v(x, t)`` (torch module or callable) is integrated from Gaussian noise at
  t = 0 to data at t = 1 with a fixed-step Euler or Heun solver
  (:mod:`~implicit_temperature.adapters.flow_matching.velocity`). ``TemperatureSampler`` picks
  this adapter by itself for a :class:`VelocityField`; a bare callable needs
  ``adapter="flow_matching"`` and ``sample_shape=``.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.errors import InvalidArgumentTypeError
from ..pipelines.adapter import SampleAdapter, check_call_kwargs
from ..pipelines.detect import is_diffusion_pipeline, is_flow_matching_pipeline
from ..pipelines.driver import PipelineDriver
from .velocity import VELOCITY_BATCH_SIZE, VelocityField, VelocityFieldDriver


class FlowMatchingAdapter(SampleAdapter):
    """Adapter ``flow_matching``.

    Options for every model: ``quantizer``, ``quantizer_options`` (e.g. ``quantizer="grid",
    quantizer_options={"cell_size": 0.5}``), ``batch_size``, ``progress``, ``fit_samples``,
    ``fit_seed`` — as for the ``diffusion`` adapter (default quantizer: nearest
    mixture component for models with ``mixture_means``, image hash for image-shaped samples).

    Pipelines: ``prompt``, ``pipeline_progress_bar`` and ``**call_kwargs`` (passed to each call).

    Velocity fields: ``sample_shape`` (required for a bare callable), ``num_steps`` (default 50),
    ``solver`` ("euler" or "heun"), ``device`` (default: the module's parameters' device, else
    CPU), ``dtype`` (default float32); ``batch_size`` defaults to 1024 here.
    """

    name = "flow_matching"

    def __init__(
        self,
        model: Any,
        *,
        quantizer: Any = None,
        quantizer_options: dict[str, Any] | None = None,
        batch_size: int | None = None,
        progress: bool | None = None,
        fit_samples: int = 1024,
        fit_seed: int = 0,
        prompt: str | list[str] | None = None,
        pipeline_progress_bar: bool = False,
        sample_shape: tuple[int, ...] | None = None,
        num_steps: int = 50,
        solver: str = "euler",
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        **call_kwargs: Any,
    ) -> None:
        if is_diffusion_pipeline(model):
            if not is_flow_matching_pipeline(model):
                raise InvalidArgumentTypeError(
                    f"{type(model).__name__} uses {type(model.scheduler).__name__}, not a "
                    "flow-matching scheduler; use adapter='diffusion' (or leave adapter unset)"
                )
            if sample_shape is not None:
                raise InvalidArgumentTypeError(
                    "sample_shape is for velocity fields; a pipeline knows its shape"
                )
            check_call_kwargs(type(self), model, call_kwargs)
            driver: Any = PipelineDriver(
                model,
                batch_size=batch_size,
                prompt=prompt,
                progress=progress,
                pipeline_progress_bar=pipeline_progress_bar,
                call_kwargs=call_kwargs,
            )
        elif callable(model):
            check_call_kwargs(type(self), None, call_kwargs)
            if prompt is not None or call_kwargs:
                extra = sorted(call_kwargs) + (["prompt"] if prompt is not None else [])
                raise InvalidArgumentTypeError(
                    f"option(s) {extra} apply to diffusers pipelines; a velocity field takes "
                    "sample_shape, num_steps, solver, device, dtype, batch_size, quantizer"
                )
            if sample_shape is None:
                sample_shape = getattr(model, "sample_shape", None)
            if sample_shape is None:
                raise InvalidArgumentTypeError(
                    "a velocity field needs sample_shape=, the shape of one sample, e.g. "
                    "TemperatureSampler(net, adapter='flow_matching', sample_shape=(2,)) or "
                    "TemperatureSampler(VelocityField(net, sample_shape=(2,)))"
                )
            driver = VelocityFieldDriver(
                model,
                sample_shape=tuple(sample_shape),
                num_steps=num_steps,
                solver=solver,
                batch_size=batch_size or VELOCITY_BATCH_SIZE,
                device=device,
                dtype=dtype,
                progress=progress,
            )
        else:
            raise InvalidArgumentTypeError(
                f"the flow_matching adapter takes a diffusers pipeline with a flow-matching "
                f"scheduler or a velocity field v(x, t) (torch module or callable), got "
                f"{type(model).__module__}.{type(model).__qualname__}"
            )
        self._setup(
            model,
            driver,
            quantizer=quantizer,
            quantizer_options=quantizer_options,
            fit_samples=fit_samples,
            fit_seed=fit_seed,
        )

    @classmethod
    def handles(cls, model: Any) -> bool:
        """True for diffusers pipelines with a flow-matching scheduler and for
        :class:`VelocityField` objects (bare callables need ``adapter="flow_matching"``)."""
        return isinstance(model, VelocityField) or is_flow_matching_pipeline(model)
