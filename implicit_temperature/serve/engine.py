"""The work behind the endpoints: one batched CALM decode for many requests, images one by one.

:class:`CompletionWork` is one completions request after validation (token ids, settings, one
seed per prompt). :meth:`CALMEngine.run_batch` decodes several of them in **one**
:func:`~implicit_temperature.adapters.calm.generation.decode_chunks` call: prompts left-padded
into one batch (one backbone call per step for all), and one generator per prompt, so each
prompt's chunks are picked by the core from its own stream and an answer never depends on its
batch-mates. Settings (temperature, method, ...) may differ between the requests of a batch:
the chunk choice is dispatched per prompt group.

Requests **without** a seed promise no reproducibility (as in vLLM, where unseeded requests share
the engine's generator): those with equal sampling settings share one generator per batch, so
their rows are picked by **one** vectorised core call per step. Seeded requests keep one stream
per row, and those with equal settings are still picked by one core call per step, whatever
the method: the core takes one generator per row and sizes and plans every row from its own
state (auto and planned exact: each row's own pilot; see core/rows.py).
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..adapters.calm.generation import (
    CALMGenerateOutput,
    PickFn,
    RowGroup,
    decode_chunks,
    generate,
    mode_pick,
    row_streams,
    sampling_pick,
)
from ..adapters.calm.prompts import left_pad
from ..adapters.calm.stopping import truncate_at_stop
from ..core.errors import ImplicitTemperatureError, InvalidArgumentError
from ..core.options import SampleOptions
from ..core.validation import make_generator


class RequestError(ImplicitTemperatureError, ValueError):
    """The request cannot run on this model (answered 400, not 500)."""


#: Called from the worker thread as ``on_text(choice_index, text_so_far)`` while streaming.
TextCallback = Callable[[int, str], None]


def generate_supports(name: str) -> bool:
    """Whether the installed CALM ``generate`` takes keyword ``name`` (e.g. ``tolerance``)."""
    return name in inspect.signature(generate).parameters


@dataclass(eq=False)
class CompletionWork:
    """One validated completions request (see the module docstring)."""

    prompts: list[torch.Tensor]  # (1, L_p) token ids each
    n: int
    max_tokens: int
    temperature: float
    method: str
    plan: Any
    num_samples: int
    max_draws: int | None
    stop: tuple[str, ...]
    seeds: list[int] | None  # one per prompt; None: unseeded (may share a batch's stream)
    options: dict[str, Any] = field(default_factory=dict)  # e.g. tolerance, where supported
    on_text: TextCallback | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def batch_key(self) -> tuple[int]:
        """Requests with equal keys may share a decode (same number of decoding steps)."""
        return (self.max_tokens,)

    @property
    def rows(self) -> int:
        return len(self.prompts) * self.n

    def sample_options(self) -> SampleOptions:
        """The core's options of this request (one chunk per call; the generator is per row)."""
        kwargs: dict[str, Any] = dict(
            method=self.method, num_samples=self.num_samples, max_draws=self.max_draws
        )
        if self.plan is not None:
            kwargs["plan"] = self.plan
        return SampleOptions.from_kwargs(
            {**kwargs, **self.options}, where="the server", exclude=("num_outputs", "generator")
        )

    @property
    def sampling_key(self) -> tuple:
        """Unseeded works with equal keys share one generator (one core call per step)."""
        options = tuple(sorted((k, repr(v)) for k, v in self.options.items()))
        return (
            self.temperature,
            self.method,
            str(self.plan),
            self.num_samples,
            self.max_draws,
            options,
        )


@dataclass
class Choice:
    text: str
    finish_reason: str
    tokens: int
    draws: int
    method: str
    plans: list[str] | None
    estimated_tv: float | None
    seed: int | None


@dataclass
class CompletionResult:
    choices: list[Choice]  # prompt-major: prompt p, output j at p * n + j
    prompt_tokens: int
    completion_tokens: int
    draws: int


def _max_tv(values: list[Any]) -> float | None:
    if not values:
        return None
    return max(float(torch.as_tensor(v, dtype=torch.float64).max()) for v in values)


class _Streamer:
    """transformers' streamer contract, dispatching each new chunk to the streaming requests."""

    def __init__(self, engine: CALMEngine, owners: list[tuple[CompletionWork, int]]) -> None:
        self.engine, self.owners = engine, owners
        self.chunks: list[torch.Tensor] = []
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.chunks.append(value)
        new = torch.cat(self.chunks, dim=1)
        for row, (work, index) in enumerate(self.owners):
            if work.on_text is not None and not work.cancelled.is_set():
                text = self.engine.tokenizer.decode(
                    new[row, : work.max_tokens], skip_special_tokens=True
                )
                work.on_text(index, truncate_at_stop(text, work.stop)[0])

    def end(self) -> None:
        pass


class _RowStops:
    """Stopping criterion: a row is done when its request is cancelled (client gone) or its new
    text holds one of its request's stop strings."""

    def __init__(
        self, tokenizer: Any, owners: list[tuple[CompletionWork, int]], prompt_len: int
    ) -> None:
        self.tokenizer, self.owners, self.prompt_len = tokenizer, owners, prompt_len

    def __call__(self, sequences: torch.Tensor, scores: Any = None) -> torch.Tensor:
        new = sequences[:, self.prompt_len :].cpu()
        done = []
        for row, (work, _) in enumerate(self.owners):  # text matching: one decode per row
            if work.cancelled.is_set():
                done.append(True)
            elif work.stop:
                text = self.tokenizer.decode(new[row, : work.max_tokens], skip_special_tokens=True)
                done.append(truncate_at_stop(text, work.stop)[1])
            else:
                done.append(False)
        return torch.tensor(done, dtype=torch.bool, device=sequences.device)


class CALMEngine:
    """Decodes batches of :class:`CompletionWork` on one CALM model and its tokenizer."""

    kind = "completions"

    def __init__(self, model: Any, tokenizer: Any, device: torch.device) -> None:
        self.model, self.tokenizer, self.device = model, tokenizer, device
        config = getattr(model, "config", None)
        self.eos_token_id = getattr(tokenizer, "eos_token_id", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(config, "pad_token_id", None)
        self.pad_token_id = int(pad if pad is not None else (self.eos_token_id or 0))

    def _pick(self, work: CompletionWork) -> PickFn:
        if work.temperature == 0:
            return mode_pick(work.num_samples)
        return sampling_pick(work.temperature, work.sample_options())

    def _groups(self, works: list[CompletionWork]) -> tuple[list[_Group], list[list[_Group]]]:
        """The batch's row groups (one pick call per group and step) and, per work and prompt,
        its group. Unseeded rows with equal settings share one stream; seeded rows with equal
        settings share one group with a stream per row (both picks take per-row generators,
        with every method)."""
        groups: dict[tuple, _Group] = {}
        owners: list[list[_Group]] = []
        row = 0
        for work in works:
            pick, per_work = self._pick(work), []
            shared = work.seeds is None
            for p in range(len(work.prompts)):
                key = ("shared" if shared else "rows", work.sampling_key)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = _Group(pick, CALMGenerateOutput(sequences=torch.empty(0)))
                    if shared:
                        group.generator = make_generator(None, self.device)
                if not shared:
                    assert work.seeds is not None
                    g = make_generator(work.seeds[p], self.device)
                    group.row_gens += [g] * work.n
                group.rows += range(row, row + work.n)
                row += work.n
                per_work.append(group)
            owners.append(per_work)
        return list(groups.values()), owners

    def run_batch(self, works: list[CompletionWork]) -> list[CompletionResult]:
        """Decode ``works`` (equal :attr:`CompletionWork.batch_key`) together."""
        rows, owners = [], []
        for work in works:
            for p, ids in enumerate(work.prompts):
                for j in range(work.n):
                    rows.append(ids)
                    owners.append((work, p * work.n + j))
        groups, per_work = self._groups(works)
        input_ids, mask = left_pad(rows, self.pad_token_id)
        streaming = any(w.on_text is not None for w in works)
        out = decode_chunks(
            self.model,
            input_ids.to(self.device),
            _unused_pick,
            attention_mask=mask.to(self.device),
            max_new_tokens=max(w.max_tokens for w in works),
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            groups=[g.row_group(self.device) for g in groups],
            stopping_criteria=[_RowStops(self.tokenizer, owners, input_ids.shape[1])],
            streamer=_Streamer(self, owners) if streaming else None,
        )
        return self._results(works, per_work, out, input_ids.shape[1])

    def _results(
        self,
        works: list[CompletionWork],
        per_work: list[list[_Group]],
        out: CALMGenerateOutput,
        prompt_len: int,
    ) -> list[CompletionResult]:
        new = out.sequences[:, prompt_len:].cpu()
        counts = (new != self.pad_token_id).sum(dim=1).tolist()
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        results, row = [], 0
        for work, groups in zip(works, per_work, strict=True):
            choices = []
            for p, group in enumerate(groups):
                o = group.out
                methods = "+".join(sorted(set(o.methods))) or "ancestral"
                plans = sorted({str(x) for x in o.plans if x is not None}) or None
                for _ in range(work.n):
                    text, hit = truncate_at_stop(texts[row], work.stop)
                    reason = out.finish_reasons[row]
                    choices.append(
                        Choice(
                            text=text,
                            finish_reason="length" if reason == "length" and not hit else "stop",
                            tokens=min(int(counts[row]), work.max_tokens),
                            draws=round(o.draws / len(group.rows)),
                            method=methods,
                            plans=plans,
                            estimated_tv=_max_tv(o.estimated_tv),
                            seed=None if work.seeds is None else work.seeds[p],
                        )
                    )
                    row += 1
            results.append(
                CompletionResult(
                    choices=choices,
                    prompt_tokens=sum(int(x.shape[-1]) for x in work.prompts),
                    completion_tokens=sum(c.tokens for c in choices),
                    draws=sum(c.draws for c in choices),
                )
            )
        return results


def _unused_pick(adapter: Any, g: Any, out: CALMGenerateOutput) -> torch.Tensor:
    raise AssertionError("every row group of the server brings its own pick")


@dataclass(eq=False)
class _Group:
    """Rows of a batch chosen by one pick call per step, with their own statistics ``out``:
    one ``generator`` for all, or ``row_gens`` (one per row; the n outputs of a prompt repeat
    its generator, and :func:`row_streams` gives each its own child stream)."""

    pick: PickFn
    out: CALMGenerateOutput
    rows: list[int] = field(default_factory=list)
    generator: torch.Generator | None = None
    row_gens: list[torch.Generator] = field(default_factory=list)

    def row_group(self, device: torch.device) -> RowGroup:
        def pick(adapter: Any, g: Any, _: CALMGenerateOutput) -> torch.Tensor:
            return self.pick(adapter, g, self.out)

        gen = self.generator if self.generator is not None else row_streams(self.row_gens)
        return RowGroup(torch.tensor(self.rows, device=device), gen, pick)


@dataclass(eq=False)
class ImageWork:
    prompt: str | None
    n: int
    temperature: float
    method: str
    plan: Any
    num_samples: int
    max_draws: int | None
    seed: int
    options: dict[str, Any]  # adapter options (quantizer=...) and core options (tolerance=...)
    seeded: bool = True  # False: the server drew ``seed``; the request may share a stream
    cancelled: threading.Event = field(default_factory=threading.Event)

    batch_key = ("image",)

    @property
    def rows(self) -> int:
        """Images asked for (what the batcher's max_batch counts)."""
        return self.n

    def share_key(self, conditional: bool) -> tuple:
        """Unseeded works with equal keys are sampled by one core call (their images drawn
        together); the prompt counts only where the pipeline takes one."""
        options = tuple(sorted((k, repr(v)) for k, v in self.options.items()))
        prompt = self.prompt if conditional else None
        return (
            prompt,
            self.temperature,
            self.method,
            str(self.plan),
            self.num_samples,
            self.max_draws,
            options,
        )


@dataclass
class ImageResult:
    images: list[str]  # base64 PNGs
    draws: int
    method: str
    plan: Any
    estimated_tv: float | None
    prompt_used: bool = True
    batched_with: int = 1  # requests sampled in the same core call (this one included)


def png_base64(image: torch.Tensor) -> str:
    """``(C, H, W)`` image (C = 1, 3 or 4; floats in [0, 1] or uint8) -> base64 PNG."""
    from PIL import Image

    x = image.detach().cpu()
    if x.dtype.is_floating_point:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    x = x.to(torch.uint8).permute(1, 2, 0).numpy()
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[x.shape[2]]
    buf = io.BytesIO()
    Image.fromarray(x[:, :, 0] if mode == "L" else x, mode=mode).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class ImageEngine:
    """Images from a pipeline through its adapter (``TemperatureSampler``); unseeded requests
    with equal settings are sampled together (:meth:`run_batch`)."""

    kind = "images"

    def __init__(self, model: Any, adapter: str | None, options: dict[str, Any]) -> None:
        from ..plugins import TemperatureSampler

        self.model, self.adapter, self.options = model, adapter, options
        self._sampler_cls = TemperatureSampler
        try:  # an unconditional pipeline (no prompt parameter) ignores the request's prompt
            self.conditional = "prompt" in inspect.signature(model.__call__).parameters
        except (TypeError, ValueError):
            self.conditional = True

    def run_batch(self, works: list[ImageWork]) -> list[ImageResult]:
        """Unseeded works with equal settings (:meth:`ImageWork.share_key`) in one core call
        with their images together (``num_outputs`` = the sum of their n, one pipeline batch
        per draw call), then split in arrival order; a seeded work alone (its seed is its own
        stream: batching would change what the seed gives)."""
        groups: dict[tuple, list[int]] = {}
        for i, w in enumerate(works):
            key = ("seeded", i) if w.seeded else w.share_key(self.conditional)
            groups.setdefault(key, []).append(i)
        results: list[ImageResult | None] = [None] * len(works)
        for members in groups.values():
            part = [works[i] for i in members]
            for i, res in zip(members, self._run_together(part), strict=True):
                results[i] = res
        return [r for r in results if r is not None]

    def _run_together(self, works: list[ImageWork]) -> list[ImageResult]:
        """One core call for ``works`` (equal settings): the first's settings and seed, the sum
        of their n; each gets its own slice of the images and its share of the draws."""
        total = sum(w.n for w in works)
        whole = self._run(works[0], total)
        if len(works) == 1:
            return [whole]
        out, start = [], 0
        for w in works:
            share = dataclasses.replace(
                whole,
                images=whole.images[start : start + w.n],
                draws=round(whole.draws * w.n / total),
                batched_with=len(works),
            )
            out.append(share)
            start += w.n
        return out

    def _run(self, work: ImageWork, n: int | None = None) -> ImageResult:
        from ..jobs.sampling import _is_image_batch

        options = {**self.options, **{k: v for k, v in work.options.items() if k == "quantizer"}}
        if work.prompt is not None and self.conditional:
            options["prompt"] = work.prompt
        core = {k: v for k, v in work.options.items() if k != "quantizer"}
        if work.plan is not None:
            core["plan"] = work.plan
        try:
            sampler = self._sampler_cls(self.model, self.adapter, **options)
        except (TypeError, ValueError) as exc:
            raise RequestError(f"the pipeline refused these options: {exc}") from None
        res = sampler.sample(
            work.temperature,
            method=work.method,
            num_samples=work.num_samples,
            num_outputs=work.n if n is None else n,
            max_draws=work.max_draws,
            generator=work.seed,
            **core,
        )
        samples = res.samples[0] if getattr(res, "batched", False) else res.samples
        if not _is_image_batch(samples):
            raise InvalidArgumentError(
                f"the model's samples have shape {tuple(getattr(samples, 'shape', ()))}, not "
                "images (N, C, H, W): serve it for a sampling job instead (itemp sample)"
            )
        return ImageResult(
            images=[png_base64(samples[k]) for k in range(samples.shape[0])],
            draws=int(res.draws),
            method=str(res.method),
            plan=getattr(res, "plan", None),
            estimated_tv=_max_tv(
                [] if getattr(res, "estimated_tv", None) is None else [res.estimated_tv]
            ),
            prompt_used="prompt" in options,
        )
