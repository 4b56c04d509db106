"""The ``diffusion`` adapter: temperature control for a diffusers ``DiffusionPipeline``.

Handles every diffusers pipeline whose scheduler is *not* a flow-matching one (those go to the
``flow_matching`` adapter, so ``TemperatureSampler(pipe)`` never sees two candidates): DDPM, DDIM,
latent diffusion, prompt-conditioned pipelines (through ``num_images_per_prompt``), custom
``DiffusionPipeline`` subclasses such as the shipped DDPM demo.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.errors import InvalidArgumentTypeError
from ...plugins import Adapter
from ...plugins.options import (
    UnknownOptionError,
    did_you_mean,
    keyword_names,
    misplaced_hint,
)
from .detect import is_diffusion_pipeline, is_flow_matching_pipeline
from .driver import PipelineDriver, _call_parameters
from .keys import AdapterKeys


def check_call_kwargs(adapter: type, target: Any, call_kwargs: dict[str, Any]) -> None:
    """Keywords that reached ``**call_kwargs`` must be call arguments of ``target`` (a pipeline),
    or None for a model that takes none (then only typos of adapter options and misplaced
    keywords are reported here). Anything else raises :class:`UnknownOptionError` saying
    it was passed to the adapter, the closest valid name, and where sampling keywords
    (``temperature=``) and quantizer options (``cell_size=``) go instead."""
    options, _ = keyword_names(adapter.__init__, skip=("self", "model"))
    if target is None:  # other keywords get the caller's own message (pipeline-only options)
        names, var_kw, what = set(), True, "a velocity field takes no call arguments"
    else:
        names, var_kw = _call_parameters(target)
        names = names - {"self"}
        what = f"{type(target).__name__}.__call__ takes no argument(s) {{bad}}"
    for name, value in call_kwargs.items():
        if name in names:
            continue
        hint = misplaced_hint(name, value)
        close = did_you_mean(name, options | names, cutoff=0.8 if var_kw else 0.6)
        if var_kw and not (hint or did_you_mean(name, options, cutoff=0.8)):
            continue  # the pipeline takes **kwargs: it may well use this one
        raise UnknownOptionError(
            f"unknown keyword {name!r} passed to the {adapter.name!r} adapter "
            f"(TemperatureSampler(model, {name}=...) or {adapter.__name__}(model, ...)): it is "
            f"not an adapter option, and {what.format(bad=[name])}{close}{hint} Adapter options: "
            f"{', '.join(sorted(options))}"
            + (f"; pipeline arguments: {', '.join(sorted(names))}" if names else "")
        )


class SampleAdapter(Adapter):
    """Shared machinery: a ``driver(n, generator) -> tensor`` plus :class:`AdapterKeys`."""

    def _setup(
        self,
        model: Any,
        driver: Any,
        *,
        quantizer: Any,
        quantizer_options: dict[str, Any] | None,
        fit_samples: int,
        fit_seed: int,
    ) -> None:
        self.model = model
        self._driver = driver
        self._keys = AdapterKeys(
            quantizer,
            quantizer_options,
            model=model,
            pilot=self._draw_unbatched_pilot,
            fit_samples=fit_samples,
            fit_seed=fit_seed,
        )

    @property
    def batched(self) -> bool:  # type: ignore[override]
        return self.num_problems is not None

    @property
    def num_problems(self) -> int | None:
        return getattr(self._driver, "num_problems", None)

    @property
    def quantizer(self) -> Any:
        """The quantizer in use (None until the default is chosen from the first samples)."""
        return self._keys.quantizer

    def fit(self) -> SampleAdapter:
        """Fit the quantizer now (a quantizer with ``fit``, e.g. a codebook, on ``fit_samples``
        pilot draws; the default quantizer is chosen from one pilot draw) instead of inside the
        first ``sample()``. Returns the adapter."""
        self._keys.fit()
        return self

    def _draw_unbatched_pilot(self, m: int, generator: torch.Generator) -> torch.Tensor:
        x = self._driver(m, generator)
        return x.flatten(0, 1) if self.batched else x

    def draw(
        self, n: int, generator: torch.Generator | None = None, active: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` i.i.d. samples as one tensor ``(n, ...)`` (``(B, n, ...)`` for B prompts; with
        ``active``, a bool (B,) mask, only those prompts: ``(B_active, n, ...)``).

        Images come back channels-first ``(n, C, H, W)``; see
        :mod:`implicit_temperature.adapters.diffusion.outputs`. The same ``generator`` state
        gives the same samples (CPU; on GPU up to the usual kernel non-determinism).
        """
        if active is None:
            return self._driver(n, generator)
        return self._driver(n, generator, active)

    def quantize(self, samples: Any) -> torch.Tensor:
        """Keys for ``samples``: LongTensor ``(n,)``/``(n, d)`` (batched: ``(B, n, ...)``)."""
        return self._keys(samples, batched=self.batched)


class DiffusionAdapter(SampleAdapter):
    """Adapter ``diffusion`` for diffusers pipelines (not flow-matching ones).

    Options (all keyword):
        quantizer: what "the same outcome" means. None (default): nearest mixture component for
            pipelines with ``mixture_means`` (the demos), else an average hash of the
            downsampled image (:class:`~.keys.ImageHashQuantizer`, see its limits); a registered
            quantizer name (``"grid"``, ``"codebook"``, ``"classifier"``, ...); a quantizer
            object; or any callable ``samples -> integer labels``.
        quantizer_options: dict of options for a registered quantizer name, e.g.
            ``quantizer="grid", quantizer_options={"cell_size": 0.5}`` (the one way to pass
            quantizer options to an adapter; or pass a ready quantizer object as ``quantizer=``).
        batch_size: most samples per pipeline call (memory); default the pipeline's
            ``default_draw_batch_size`` or 16.
        prompt: a string, or a list of B strings (then the adapter is batched: B problems).
        progress: tqdm bar over chunks: True, False, or None (when >= 4 chunks).
        pipeline_progress_bar: keep the pipeline's own per-call bar (default off).
        fit_samples, fit_seed: pilot size and seed for quantizers that need ``fit``.
        **call_kwargs: passed to every pipeline call (``num_inference_steps=``, ...).
    """

    name = "diffusion"

    def __init__(
        self,
        model: Any,
        *,
        quantizer: Any = None,
        quantizer_options: dict[str, Any] | None = None,
        batch_size: int | None = None,
        prompt: str | list[str] | None = None,
        progress: bool | None = None,
        pipeline_progress_bar: bool = False,
        fit_samples: int = 1024,
        fit_seed: int = 0,
        **call_kwargs: Any,
    ) -> None:
        if not is_diffusion_pipeline(model):
            raise InvalidArgumentTypeError(
                f"the diffusion adapter drives a diffusers.DiffusionPipeline, got "
                f"{type(model).__module__}.{type(model).__qualname__}. Load one (e.g. "
                "DDPMPipeline.from_pretrained(...)); for a plain velocity field v(x, t) use "
                "adapter='flow_matching' with sample_shape=...; for any other sampler wrap it "
                "as draw(n) and call implicit_temperature.temperature_sample"
            )
        check_call_kwargs(type(self), model, call_kwargs)
        driver = PipelineDriver(
            model,
            batch_size=batch_size,
            prompt=prompt,
            progress=progress,
            pipeline_progress_bar=pipeline_progress_bar,
            call_kwargs=call_kwargs,
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
        """True for diffusers pipelines whose scheduler is not a flow-matching one."""
        return is_diffusion_pipeline(model) and not is_flow_matching_pipeline(model)
