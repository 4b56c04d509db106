"""Diffusers-native use: ``with_temperature(pipe)(..., temperature=0.5).images``.

:class:`TemperaturePipeline` wraps any pipeline that the ``diffusion`` or ``flow_matching``
adapter drives and is called like the pipeline itself::

    from implicit_temperature.adapters.diffusion import with_temperature

    tpipe = with_temperature(pipe, quantizer="classifier",
                             quantizer_options={"fn": classify}, num_inference_steps=20)
    tpipe.fit()                                   # optional: fit the quantizer now, not lazily
    out = tpipe(temperature=0.5, num_images_per_prompt=4, generator=torch.manual_seed(0))
    out.images                                    # 4 PIL images, as pipe(...) would return
    make_image_grid(out.images, rows=1, cols=4)

    out = tpipe(["a cat", "a dog"], temperature=0.5, num_images_per_prompt=4,
                generator=[torch.Generator().manual_seed(s) for s in (1, 2)])  # one per prompt

The result is the pipeline's own output class (``ImagePipelineOutput`` for ``DDPMPipeline``,
``StableDiffusionPipelineOutput`` for Stable Diffusion, ...), with the first field (``images``, or
``samples`` for the shipped 2-D demos) holding the tempered samples in ``output_type``; other
fields (e.g. ``nsfw_content_detected``) are None. ``tpipe.last_results`` keeps the
:class:`~implicit_temperature.core.TemperatureResult` of each run (draws, method, keys).

Pipeline arguments are checked when the wrapper is built (unknown names; ``num_inference_steps``
against the scheduler's training steps), not at the first draw.

Each call shows one progress bar (``progress=``) over the samples it draws, labelled with the
temperature and method, with the total when it is known in advance (the batch method). The
pipeline's own per-step bar is silenced during the wrapper's calls and its configuration is left
as the user set it (:mod:`~implicit_temperature.adapters.pipelines.progress`).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Any

import torch

from ...core import TemperatureResult, temperature_sample
from ...core.errors import InvalidArgumentError, InvalidArgumentTypeError, UnknownOptionError
from ...core.options import SampleOptions, did_you_mean, positive_int
from .adapter import SampleAdapter
from .detect import is_diffusion_pipeline
from .progress import CallProgress

#: SampleOptions the wrapper does not take by their core names: the outputs per problem are the
#: call's ``num_images_per_prompt``, the generator is the call's, and ``progress=`` is the
#: wrapper's own bar per call.
NOT_WRAPPER_OPTIONS = ("num_outputs", "generator", "progress")
#: The sampling options of the wrapper and of each call (derived from SampleOptions).
WRAPPER_OPTIONS = tuple(n for n in SampleOptions.names() if n not in NOT_WRAPPER_OPTIONS)
#: Arguments of ``__call__`` that belong to each call, not to the wrapper nor the pipeline.
_PER_CALL = (
    "prompt",
    "temperature",
    "num_images_per_prompt",
    "num_outputs",
    "batch_size",
    "generator",
    "output_type",
    "return_dict",
)


def _split_options(
    pipe: Any, kwargs: dict[str, Any], where: str, base: SampleOptions | None = None
) -> tuple[SampleOptions, dict[str, Any]]:
    """(sampling options over ``base``, pipeline arguments) from ``kwargs``. A name the pipeline
    does not take whose closest match is a sampling option raises :class:`UnknownOptionError`
    with "did you mean" (other names are left to the pipeline's own check)."""
    sampling = {k: v for k, v in kwargs.items() if k in WRAPPER_OPTIONS}
    rest = {k: v for k, v in kwargs.items() if k not in WRAPPER_OPTIONS}
    params = inspect.signature(pipe.__call__).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for name in rest:
        if takes_any or name in params or name in _PER_CALL:
            continue
        close = difflib.get_close_matches(name, [*params, *WRAPPER_OPTIONS], n=1, cutoff=0.6)
        if close and close[0] in WRAPPER_OPTIONS:
            raise UnknownOptionError(
                f"{where} got an unknown keyword {name!r}{did_you_mean(name, close)} (its "
                f"sampling options: {', '.join(WRAPPER_OPTIONS)}; other keywords go to the "
                "pipeline)"
            )
    options = SampleOptions.from_kwargs(sampling, where=where, base=base)
    return options, rest


def _call_defaults(pipe: Any) -> dict[str, Any]:
    params = inspect.signature(pipe.__call__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def _adapter_class(pipe: Any, adapter: Any) -> type[SampleAdapter]:
    from ...plugins import get_adapter
    from ...plugins.sampler import find_adapter_class

    if adapter is None:
        cls = find_adapter_class(pipe)
    elif isinstance(adapter, str):
        cls = get_adapter(adapter)
    else:
        cls = adapter
    if not (isinstance(cls, type) and issubclass(cls, SampleAdapter)):
        raise InvalidArgumentTypeError(
            f"TemperaturePipeline drives pipelines through the 'diffusion' or 'flow_matching' "
            f"adapter, got adapter {getattr(cls, 'name', cls)!r}; use TemperatureSampler for "
            "other adapters"
        )
    return cls


def images_to_output_type(samples: torch.Tensor, output_type: str | None, pipe: Any) -> Any:
    """Tempered samples ``(n, ...)`` in the pipeline's ``output_type``.

    Images ``(n, C, H, W)`` in [0, 1]: ``"pil"`` -> list of PIL images (mode ``L`` for one
    channel), ``"np"`` -> float32 ``(n, H, W, C)``, ``"pt"``/``"latent"``/None -> the tensor.
    Other samples (e.g. 2-D points): ``"np"`` -> ndarray, ``"pt"``/None -> the tensor;
    ``"pil"`` raises ``ValueError``.
    """
    is_image = samples.dim() == 4 and samples.is_floating_point()
    if output_type in (None, "pt", "latent"):
        return samples
    if output_type == "np":
        x = samples.detach().cpu()
        return (x.permute(0, 2, 3, 1) if is_image else x).float().numpy()
    if output_type == "pil":
        if not is_image:
            raise InvalidArgumentError(
                f"output_type='pil' needs image samples (n, C, H, W); this pipeline gives "
                f"samples of shape {tuple(samples.shape[1:])}: use output_type='pt' or 'np'"
            )
        array = samples.detach().cpu().clamp(0, 1).permute(0, 2, 3, 1).float().numpy()
        to_pil = getattr(pipe, "numpy_to_pil", None)
        if to_pil is None:  # pragma: no cover - every DiffusionPipeline has it
            from diffusers import DiffusionPipeline

            to_pil = DiffusionPipeline.numpy_to_pil
        return to_pil(array)
    raise InvalidArgumentError(
        f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}"
    )


def _build_output(output_cls: type | None, samples: Any, return_dict: bool) -> Any:
    if not return_dict:
        return (samples,)
    if output_cls is not None and dataclasses.is_dataclass(output_cls):
        fields = [f.name for f in dataclasses.fields(output_cls)]
        values = {name: None for name in fields[1:]}
        return output_cls(**{fields[0]: samples}, **values)
    from diffusers.pipelines.pipeline_utils import ImagePipelineOutput

    return ImagePipelineOutput(images=samples)


class TemperaturePipeline:
    """A diffusers pipeline with a ``temperature=`` argument.

    Args:
        pipe: a ``diffusers.DiffusionPipeline`` driven by the ``diffusion`` or ``flow_matching``
            adapter (DDPM/DDIM, latent diffusion, Stable Diffusion-like prompt pipelines,
            flow-matching pipelines, the shipped demos).
        adapter: None (the registered adapter that handles ``pipe``) or an adapter name/class.
        quantizer, quantizer_options, fit_samples, fit_seed: what "the same outcome" means (see
            the adapter; default: image hash for images — usually too fine for temperature to
            act, prefer ``quantizer="classifier"``).
        draw_batch_size: most images per pipeline call (memory); the adapter's ``batch_size``.
        progress: one tqdm bar per call, over the samples drawn for it: True, False, or None
            (default: the bar appears only when a call lasts longer than a second).
        **kwargs: the sampling options of :class:`~implicit_temperature.core.SampleOptions`
            (the keywords of ``temperature_sample``: ``method`` "auto"/"exact"/"batch",
            ``plan``, ``num_samples`` (N of the batch method and of auto's pilot),
            ``max_draws``, ``tolerance`` (the TV to P^(1/T) auto must reach; an
            AccuracyWarning when it is missed, or InaccurateResultError with
            ``on_inaccurate="raise"``), ``estimator``, ...; ``WRAPPER_OPTIONS``), the defaults
            of every call, validated now; except ``num_outputs`` (the call's
            ``num_images_per_prompt``), ``generator`` (the call's) and ``progress`` (above).
            Every other keyword is a pipeline argument used for every call
            (``num_inference_steps``, ``guidance_scale``, ...), checked against the pipeline's
            signature now.

    Raises:
        TypeError: not a diffusers pipeline, an adapter that is not a pipeline adapter, or an
            argument the pipeline does not take (:class:`UnknownOptionError` with "did you
            mean" when it is close to a sampling option).
        ValueError: ``num_inference_steps`` the scheduler cannot run, a bad sampling option.
    """

    def __init__(
        self,
        pipe: Any,
        *,
        adapter: str | type | None = None,
        quantizer: Any = None,
        quantizer_options: dict[str, Any] | None = None,
        draw_batch_size: int | None = None,
        progress: bool | None = None,
        fit_samples: int = 1024,
        fit_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        if not is_diffusion_pipeline(pipe):
            raise InvalidArgumentTypeError(
                f"with_temperature wraps a diffusers.DiffusionPipeline, got "
                f"{type(pipe).__module__}.{type(pipe).__qualname__}; for other models use "
                "implicit_temperature.TemperatureSampler"
            )
        per_call = sorted(set(kwargs) & set(_PER_CALL))
        if per_call:
            own = "num_images_per_prompt" if per_call[0] == "num_outputs" else per_call[0]
            raise InvalidArgumentTypeError(
                f"{per_call} are arguments of each call, not of the wrapper: tpipe(..., {own}=...)"
            )
        self.pipe = pipe
        self.adapter_class = _adapter_class(pipe, adapter)
        #: the sampling options of every call (each call may override them)
        self.options, call_kwargs = _split_options(pipe, kwargs, "with_temperature()")
        self.progress = progress
        self.call_kwargs = call_kwargs
        self._options: dict[str, Any] = dict(
            batch_size=draw_batch_size,
            progress=progress,
            fit_samples=fit_samples,
            fit_seed=fit_seed,
        )
        defaults = _call_defaults(pipe)
        self.output_type_default = defaults.get("output_type", "pil")
        self.conditional = "num_images_per_prompt" in defaults and "batch_size" not in defaults
        # Build one adapter now: it checks the pipeline arguments and resolves the quantizer.
        probe = self._adapter("" if self.conditional else None, quantizer, quantizer_options)
        self._probe = probe
        self._output_class: type | None = None
        self.last_results: list[TemperatureResult] = []

    # -- construction helpers ------------------------------------------------------------------
    def _adapter(
        self, prompt: Any, quantizer: Any = None, quantizer_options: dict[str, Any] | None = None
    ) -> Any:
        kwargs = dict(self._options, **self.call_kwargs)
        if quantizer_options is not None:
            kwargs["quantizer_options"] = quantizer_options
        return self.adapter_class(self.pipe, quantizer=quantizer, prompt=prompt, **kwargs)

    def _key_name(self) -> str | None:
        name = getattr(self._probe.quantizer, "name", None)
        return name if isinstance(name, str) and name else None

    @property
    def quantizer(self) -> Any:
        """The quantizer in use (None until the default is chosen from the first samples)."""
        return self._probe.quantizer

    def fit(self, prompt: str | None = None) -> TemperaturePipeline:
        """Fit the quantizer now (pilot draws, e.g. a codebook's k-means), not inside the first
        call; choose the default quantizer from one pilot image. ``prompt``: the prompt whose
        images the pilot draws (conditional pipelines; default the empty prompt). Returns self."""
        if prompt is not None and self.conditional:
            probe = self._adapter(prompt, self._probe.quantizer)
            probe.fit()
        else:
            self._probe.fit()
        return self

    @property
    def method(self) -> str:
        """The default method of each call (``options.method``)."""
        return self.options.method

    # -- sampling ----------------------------------------------------------------------------
    def _run(
        self,
        prompt: Any,
        temperature: float,
        options: SampleOptions,
        call_kwargs: dict[str, Any],
        bar: CallProgress,
    ) -> Any:
        adapter = self._probe
        if call_kwargs or prompt is not None:
            saved = self.call_kwargs
            self.call_kwargs = {**saved, **call_kwargs}
            try:
                adapter = self._adapter(prompt, self._probe.quantizer)
            finally:
                self.call_kwargs = saved
            adapter._keys = self._probe._keys  # share the (fitted) quantizer and its default
        drivers = {id(a._driver): a._driver for a in (adapter, self._probe)}  # fit pilots too
        for driver in drivers.values():
            driver.call_progress = bar
        try:
            res = temperature_sample(
                adapter.draw,
                temperature,
                key=adapter.quantize,
                batched=adapter.batched,
                key_name=self._key_name,
                options=options,
            )
        finally:
            for driver in drivers.values():
                driver.call_progress = None
        self.last_results.append(res)
        self._output_class = adapter._driver.output_class
        samples = res.samples
        return samples.flatten(0, 1) if adapter.batched else samples

    def __call__(
        self,
        prompt: str | list[str] | None = None,
        *,
        temperature: float = 1.0,
        num_images_per_prompt: int | None = None,
        batch_size: int | None = None,
        generator: torch.Generator | list[torch.Generator] | int | None = None,
        output_type: str | None = None,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Images at ``temperature``, in the pipeline's output class.

        Args:
            prompt: None (unconditional pipelines), a string, or a list of prompts (each an
                independent problem; images come prompt-major, as diffusers orders them).
            temperature: T > 0; the exact method needs T <= 1 (``method="auto"`` falls back to
                the batch method above 1).
            num_images_per_prompt: images per prompt (``batch_size`` is accepted as its alias
                for unconditional pipelines, as ``DDPMPipeline`` names it). Default 1.
            generator: a ``torch.Generator`` or int seed for the whole call, or a list with one
                generator per prompt (each prompt's images then depend on its generator only).
            output_type: ``"pil"``, ``"np"``, ``"pt"``; default the pipeline's own default.
            return_dict: False returns ``(images,)`` as diffusers does.
            **kwargs: sampling options (``WRAPPER_OPTIONS``: ``method``, ``num_samples``,
                ``max_draws``, ``tolerance``, ...) override the wrapper's for this call
                (``res.accuracy`` of each run is in ``last_results``); other keywords are extra
                pipeline arguments for this call.
        """
        if isinstance(prompt, (int, float)) and not isinstance(prompt, bool):
            raise InvalidArgumentTypeError(
                f"the first positional argument is the prompt, as in diffusers, got the number "
                f"{prompt!r}; give the temperature by name: wrapped(temperature={prompt!r})"
            )
        if num_images_per_prompt is not None and batch_size is not None:
            raise InvalidArgumentTypeError("pass num_images_per_prompt or batch_size, not both")
        count = num_images_per_prompt if num_images_per_prompt is not None else batch_size
        count = 1 if count is None else count
        if "num_outputs" in kwargs:
            raise InvalidArgumentTypeError(
                "the outputs per prompt are num_images_per_prompt= (as in diffusers), not "
                "num_outputs="
            )
        count = positive_int("num_images_per_prompt", count)
        options, call_kwargs = _split_options(
            self.pipe, kwargs, "the wrapped pipeline's call", base=self.options
        )
        if self.conditional and prompt is None:
            raise InvalidArgumentTypeError(
                f"{type(self.pipe).__name__} is prompt-conditioned: pass prompt="
            )
        if call_kwargs:
            # checked like construction arguments: a throwaway adapter validates them
            self._adapter("" if self.conditional else None, self._probe.quantizer)
        options = dataclasses.replace(options, num_outputs=count)
        self.last_results = []
        prompts = [prompt] if isinstance(prompt, str) or prompt is None else list(prompt)
        if isinstance(generator, (list, tuple)) and len(generator) != len(prompts):
            raise InvalidArgumentError(
                f"got {len(generator)} generators for {len(prompts)} prompt(s); pass one "
                "generator per prompt, or a single generator for the whole call"
            )
        bar = self._call_progress(
            temperature, options.method, options.num_samples, count * len(prompts)
        )

        def run(p: Any, g: Any) -> Any:
            opts = dataclasses.replace(options, generator=g)
            return self._run(p, temperature, opts, call_kwargs, bar)

        try:
            if isinstance(generator, (list, tuple)):
                # one run per prompt: its images depend on its own generator only
                parts = [run(p, g) for p, g in zip(prompts, generator, strict=True)]
                samples = torch.cat(parts)
            else:
                samples = run(prompt, generator)
        finally:
            bar.close()
        out_type = self.output_type_default if output_type is None else output_type
        images = images_to_output_type(samples, out_type, self.pipe)
        return _build_output(self._output_class, images, return_dict)

    def _call_progress(
        self, temperature: float, method: str, num_samples: int, outputs: int
    ) -> CallProgress:
        """The one bar of a call: the batch method's draws are known (N per output); exact and
        auto draw a random number, so their bar counts up and ends at what was spent."""
        batch = method == "batch" or (method == "auto" and temperature > 1)
        total = outputs * num_samples if batch else None
        desc = f"T={temperature:g} {method}" + (f" N={num_samples}" if batch else "")
        return CallProgress(self.progress, total=total, desc=desc)

    def __repr__(self) -> str:
        return (
            f"TemperaturePipeline({type(self.pipe).__name__}, adapter="
            f"{self.adapter_class.name!r}, quantizer={self.quantizer!r}, "
            f"method={self.method!r})"
        )


def with_temperature(pipe: Any, **options: Any) -> TemperaturePipeline:
    """``TemperaturePipeline(pipe, **options)``: the pipeline, called with ``temperature=``."""
    return TemperaturePipeline(pipe, **options)


__all__ = [
    "NOT_WRAPPER_OPTIONS",
    "WRAPPER_OPTIONS",
    "TemperaturePipeline",
    "images_to_output_type",
    "with_temperature",
]
