"""Drawing n samples from a diffusers pipeline: chunked calls, generator, progress bar.

:class:`PipelineDriver` is shared by the ``diffusion`` and ``flow_matching`` adapters. One call
of ``driver(n, generator)`` makes ceil(n / batch_size) pipeline calls (a loop over memory-sized
chunks, never over samples), passes the same ``torch.Generator`` to each (so the generator's
state alone fixes the result, for a given batch size), and returns a tensor ``(n, ...)`` —
``(B, n, ...)`` for a list of B prompts. The pipeline object is left as the user configured it:
its own progress bar is silenced only during the adapter's calls
(:func:`~.progress.pipeline_bar_silenced`).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from ...core.errors import InvalidArgumentError, InvalidArgumentTypeError
from ...core.options import is_positive_int, positive_int
from .outputs import samples_to_tensor
from .progress import CallProgress, pipeline_bar_silenced

#: Chunk size when neither ``batch_size=`` nor the pipeline's ``default_draw_batch_size`` is set
#: and the model's sample size is unknown; also the least default (:func:`default_batch_size`).
DEFAULT_BATCH_SIZE = 16
#: Values per pipeline call that the default chunk size is sized from: what 16 samples of a
#: 3 x 32 x 32 image hold. Smaller samples get proportionally more per call (a random 8 x 8 UNet
#: makes 256 per call, where each call's cost is mostly per-step overhead); larger ones get
#: DEFAULT_BATCH_SIZE, as before (Stable Diffusion's 4 x 64 x 64 latents: 16).
DRAW_BATCH_VALUES = 16 * 3 * 32 * 32
#: The largest default chunk size, whatever the sample size.
MAX_DEFAULT_BATCH_SIZE = 256
#: Show our progress bar (``progress=None``) when one draw needs at least this many chunks.
PROGRESS_MIN_CHUNKS = 4


def _call_parameters(pipe: Any) -> tuple[set[str], bool]:
    params = inspect.signature(pipe.__call__).parameters.values()
    names = {p.name for p in params}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return names, var_kw


def check_inference_steps(pipe: Any, call_kwargs: dict[str, Any]) -> None:
    """Refuse, before any draw, a ``num_inference_steps`` the scheduler cannot run.

    The value checked is ``call_kwargs["num_inference_steps"]``, else the default of the
    pipeline's ``__call__``. It must be a positive integer, and for schedulers with discrete
    training steps (not flow-matching ones) at most ``scheduler.config.num_train_timesteps``
    (e.g. ``DDPMPipeline``'s default of 1000 on a scheduler trained with 50 steps).
    """
    from .detect import is_flow_matching_scheduler

    params = inspect.signature(pipe.__call__).parameters
    if "num_inference_steps" not in params:
        return
    given = "num_inference_steps" in call_kwargs
    steps = call_kwargs["num_inference_steps"] if given else params["num_inference_steps"].default
    if steps is None or steps is inspect.Parameter.empty:
        return
    where = (
        "num_inference_steps="
        + repr(steps)
        + ("" if given else f" (the default of {type(pipe).__name__})")
    )
    if not is_positive_int(steps):  # the message says where it came from (call or default)
        raise InvalidArgumentError(f"{where}: num_inference_steps must be an integer >= 1")
    scheduler = getattr(pipe, "scheduler", None)
    config = getattr(scheduler, "config", None)
    train_steps = getattr(config, "num_train_timesteps", None) if config is not None else None
    if (
        isinstance(train_steps, int)
        and steps > train_steps
        and not is_flow_matching_scheduler(scheduler)
    ):
        raise InvalidArgumentError(
            f"{where} exceeds the {train_steps} training steps of the pipeline's "
            f"{type(scheduler).__name__}; pass num_inference_steps=<= {train_steps} as a "
            "pipeline argument (e.g. num_inference_steps=50)"
        )


def sample_values(pipe: Any) -> int | None:
    """Values in one sample of the pipeline's denoiser (``unet`` or ``transformer``):
    ``in_channels x sample_size^2`` from its config (latents for latent pipelines), or None
    where the config does not say."""
    for name in ("unet", "transformer"):
        config = getattr(getattr(pipe, name, None), "config", None)
        if config is None:
            continue
        channels = getattr(config, "in_channels", None)
        size = getattr(config, "sample_size", None)
        sides = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
        values = (channels, *sides)
        if len(sides) == 2 and all(is_positive_int(v) for v in values):
            return int(channels) * int(sides[0]) * int(sides[1])
    return None


def default_batch_size(pipe: Any) -> int:
    """The chunk size without ``batch_size=``: the pipeline's ``default_draw_batch_size``, else
    DRAW_BATCH_VALUES // :func:`sample_values` within [DEFAULT_BATCH_SIZE,
    MAX_DEFAULT_BATCH_SIZE], else DEFAULT_BATCH_SIZE."""
    given = getattr(pipe, "default_draw_batch_size", None)
    if given:
        return int(given)
    values = sample_values(pipe)
    if values is None:
        return DEFAULT_BATCH_SIZE
    return max(DEFAULT_BATCH_SIZE, min(MAX_DEFAULT_BATCH_SIZE, DRAW_BATCH_VALUES // values))


def _checked_prompt(prompt: Any) -> str | list[str] | None:
    """``prompt`` as the driver keeps it: None, a string, or a non-empty list of strings (a
    tuple becomes a list); anything else raises."""
    if isinstance(prompt, (list, tuple)):
        if not prompt or not all(isinstance(p, str) for p in prompt):
            raise InvalidArgumentTypeError("prompt must be a string or a non-empty list of strings")
        return list(prompt)
    if prompt is not None and not isinstance(prompt, str):
        raise InvalidArgumentTypeError(
            f"prompt must be a string or a list of strings, got {prompt!r}"
        )
    return prompt


class PipelineDriver:
    """Call a diffusers pipeline for n samples in chunks.

    Args:
        pipe: a ``diffusers.DiffusionPipeline``.
        batch_size: most samples per pipeline call (memory). Default: the pipeline's
            ``default_draw_batch_size`` attribute if it has one, else sized from the
            denoiser's sample (:func:`default_batch_size`: 16 for samples of 3 x 32 x 32
            values or more, up to 256 for small ones, e.g. 1 x 8 x 8), else 16.
        prompt: None (unconditional: called with ``batch_size=chunk``), a string (called with
            ``prompt=..., num_images_per_prompt=chunk``), or a list of B strings (one call for all
            B prompts; samples come back as ``(B, n, ...)``).
        progress: True/False, or None to show a tqdm bar when a draw needs >= 4 chunks. Inside a
            temperature call that has its own bar (:attr:`call_progress`, set by
            ``TemperaturePipeline``), the draws advance that one bar instead.
        pipeline_progress_bar: keep the pipeline's own per-call progress bar (default: silenced
            during the adapter's calls only, else it prints once per chunk; the pipeline's
            ``set_progress_bar_config`` is restored after each call, never changed for good).
        call_kwargs: passed to every pipeline call (``num_inference_steps``, ``guidance_scale``,
            ...). ``output_type`` defaults to ``"pt"`` where the pipeline takes it.
    """

    def __init__(
        self,
        pipe: Any,
        *,
        batch_size: int | None = None,
        prompt: str | list[str] | None = None,
        progress: bool | None = None,
        pipeline_progress_bar: bool = False,
        call_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.pipe = pipe
        default = default_batch_size(pipe)
        self.batch_size = positive_int("batch_size", default if batch_size is None else batch_size)
        self.progress = progress
        names, var_kw = _call_parameters(pipe)
        kwargs = dict(call_kwargs or {})
        reserved = {"batch_size", "num_images_per_prompt", "generator", "prompt"} & set(kwargs)
        if reserved:
            raise InvalidArgumentTypeError(
                f"{sorted(reserved)} are set by the adapter; use the adapter options batch_size= "
                "(samples per call) and prompt=, and pass generator= to sample()"
            )
        unknown = sorted(set(kwargs) - names) if not var_kw else []
        if unknown:
            raise InvalidArgumentTypeError(
                f"{type(pipe).__name__}.__call__ takes no argument(s) {unknown}; its arguments "
                f"are {sorted(names - {'self'})}. Adapter options are quantizer, "
                "quantizer_options, batch_size, prompt, progress, pipeline_progress_bar"
            )
        if "output_type" in names and "output_type" not in kwargs:
            kwargs["output_type"] = "pt"
        self.call_kwargs = kwargs
        #: type of the last pipeline output (e.g. ImagePipelineOutput), for wrappers that rebuild it
        self.output_class: type | None = None
        self.pass_generator = "generator" in names or var_kw
        self.prompt = prompt = _checked_prompt(prompt)
        if prompt is not None:
            if "num_images_per_prompt" not in names:
                raise InvalidArgumentTypeError(
                    f"{type(pipe).__name__} takes no num_images_per_prompt, so the adapter cannot "
                    "draw several samples for one prompt; leave prompt=None for an unconditional "
                    "pipeline, or pass the conditioning through the pipeline's own arguments"
                )
            self.count_arg = "num_images_per_prompt"
        elif "batch_size" in names:
            self.count_arg = "batch_size"
        elif "num_images_per_prompt" in names:
            raise InvalidArgumentTypeError(
                f"{type(pipe).__name__} is prompt-conditioned: pass prompt='...' (or a list of "
                "prompts) as an adapter option, e.g. TemperatureSampler(pipe, prompt='a cat')"
            )
        else:
            raise InvalidArgumentTypeError(
                f"{type(pipe).__name__}.__call__ has neither batch_size nor "
                "num_images_per_prompt, so the adapter cannot ask it for n samples; wrap it in a "
                "callable draw(n) and use implicit_temperature.temperature_sample"
            )
        check_inference_steps(pipe, kwargs)
        self.pipeline_progress_bar = pipeline_progress_bar
        #: the bar of the temperature call in progress (one per call), or None
        self.call_progress: CallProgress | None = None

    @property
    def num_problems(self) -> int | None:
        return len(self.prompt) if isinstance(self.prompt, list) else None

    def _call(self, count: int, generator: torch.Generator | None, prompt: Any) -> Any:
        kwargs = dict(self.call_kwargs)
        kwargs[self.count_arg] = count
        if prompt is not None:
            kwargs["prompt"] = prompt
        if self.pass_generator:
            kwargs["generator"] = generator
        with pipeline_bar_silenced(self.pipe, keep=self.pipeline_progress_bar):
            out = self.pipe(**kwargs)
        self.output_class = type(out)
        return out

    def __call__(
        self, n: int, generator: torch.Generator | None = None, active: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` samples ``(n, ...)`` (``(B, n, ...)`` for B prompts), in chunks. ``active``
        (bool (B,), prompts only): draw for those prompts only, ``(B_active, n, ...)``."""
        n = positive_int("n", n)
        prompt = self.prompt
        if active is not None and isinstance(prompt, list):
            keep = active.detach().cpu().tolist()  # B flags, once per call
            prompt = [p for p, k in zip(prompt, keep, strict=True) if k]
        b = len(prompt) if isinstance(prompt, list) else None
        per_call = max(1, self.batch_size // (b or 1))
        chunks = [min(per_call, n - i) for i in range(0, n, per_call)]
        call_bar = self.call_progress
        show = self.progress if self.progress is not None else len(chunks) >= PROGRESS_MIN_CHUNKS
        bar = None
        if show and call_bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=n * (b or 1), unit="sample", desc=type(self.pipe).__name__)
        parts = []
        try:
            for count in chunks:  # memory-sized chunks, not samples
                out = samples_to_tensor(self._call(count, generator, prompt), count * (b or 1))
                if b is not None:  # prompt-major order: p0 x count, p1 x count, ...
                    out = out.reshape(b, count, *out.shape[1:])
                parts.append(out)
                if bar is not None:
                    bar.update(count * (b or 1))
                if call_bar is not None:
                    call_bar.update(count * (b or 1))
        finally:
            if bar is not None:
                bar.close()
        if len(parts) == 1:
            return parts[0]
        return torch.cat(parts, dim=0 if b is None else 1)
