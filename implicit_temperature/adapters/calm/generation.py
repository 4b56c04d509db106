"""Chunk-by-chunk CALM decoding at any temperature, B prompts at once, with a KV cache."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ...core import temperature_sample
from ...core.errors import AccuracyWarning, InaccurateResultError
from ...core.options import SampleOptions, keyword_signature, positive_int
from ...core.tolerance import warn
from ...core.validation import check_temperature, make_generator
from .adapter import (
    CALMAdapter,
    check_calm_model,
    check_decode_chunk_size,
    check_input_ids,
    model_device,
)
from .backbone import backbone_forward, cache_keyword

#: SampleOptions that generate() does not take: one output per step, and its own generator
_NOT_PER_STEP = ("num_outputs", "generator")
#: What CALM's warnings advise: its key is the chunk itself, there is no quantizer to coarsen.
CALM_ADVICE = CALMAdapter.accuracy_advice


@dataclass
class CALMGenerateOutput:
    """What ``generate(..., return_dict_in_generate=True)`` returns.

    sequences:  LongTensor (B, L + new): prompts followed by the generated tokens.
    steps:      chunks generated (decoding steps run).
    draws:      next-chunk draws spent in total (all steps, all prompts).
    cascade_levels: batch method: per step, float64 (B_active,) power s the selection used
                (below 1/T where the N draws held no outcome often enough: raise num_samples).
    methods:    per step at T != 1, the method the core used ("exact" or "batch"; with
                method="auto" it may differ between steps).
    plans:      per step at T != 1, the exact method's collision tree (None for batch).
    diagnostics: per step at T != 1, the core's :class:`~implicit_temperature.core.Diagnostics`
                (distinct keys and singleton share of the draws the step looked at).
    accuracies: per step at T != 1, the core's :class:`~implicit_temperature.core.Accuracy`
                (estimated TV of the step's chunk law to its tempered law); ``estimated_tv`` is
                the worst step's. One AccuracyWarning per ``generate`` call sums them up.
    """

    sequences: torch.Tensor
    steps: int = 0
    draws: int = 0
    cascade_levels: list[torch.Tensor] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    plans: list[str | None] = field(default_factory=list)
    diagnostics: list[Any] = field(default_factory=list)
    accuracies: list[Any] = field(default_factory=list)

    @property
    def estimated_tv(self) -> float:
        """The worst step's estimated TV to the tempered chunk law (0.0 when every step was
        exact or T = 1; NaN when some step's could not be estimated)."""
        values = [a.estimate for a in self.accuracies]
        if any(math.isnan(v) for v in values):
            return math.nan
        return max(values, default=0.0)


def _eos_tensor(eos_token_id: Any, device: torch.device) -> torch.Tensor | None:
    if eos_token_id is None:
        return None
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    if not ids or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
        raise ValueError(
            f"eos_token_id must be a token id >= 0 or a list of them, got {eos_token_id!r}"
        )
    return torch.tensor(ids, dtype=torch.long, device=device)


@torch.no_grad()
def generate(
    model: Any,
    input_ids: torch.Tensor,
    *,
    temperature: float,
    max_new_tokens: int,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    generator: torch.Generator | int | None = None,
    return_dict_in_generate: bool = False,
    decode_chunk_size: int | None = None,
    **options: Any,
) -> torch.Tensor | CALMGenerateOutput:
    """Decode B prompts chunk by chunk at ``temperature``.

    Each step runs the backbone on the new chunk with the KV cache, then picks the next chunk of
    every unfinished prompt with one call of the core sampler (``temperature_sample(...,
    batched=True)`` over the :class:`CALMAdapter` draws; selection vectorised over B).

    Args:
        model: a model with the CALM structure (see :mod:`.adapter`).
        input_ids: LongTensor ``(B, L)``, L a positive multiple of ``model.patch_size`` (K).
        temperature: T > 0. T = 1 draws one chunk per step (plain ancestral sampling).
        max_new_tokens: at most this many new tokens (``ceil(max_new_tokens / K)`` steps; the last
            chunk is cut to fit).
        method: ``"auto"`` (default: per step, a small pilot plans the exact method; exact
            where its planned cost fits, else batch; any T), ``"batch"`` (N = ``num_samples``
            draws per step and prompt; any T; approximate) or ``"exact"`` (exact P^(1/T) per
            chunk; T <= 1; random cost).
        plan: exact method: ``"auto"`` (a planned collision tree), ``"flat"`` or a tree such
            as ``"2*(2+2)"`` (see :func:`implicit_temperature.temperature_sample`).
        num_samples: N of the batch method (and the largest pilot of ``"auto"``).
        eos_token_id: token id (or list of ids) that ends a sequence; None: never stop early.
            A chunk containing it finishes its sequence: the tokens after the first EOS in that
            chunk and every later chunk are ``pad_token_id``. Decoding stops when all are done.
        pad_token_id: filler after EOS; default ``model.config.pad_token_id``, else the first
            ``eos_token_id``.
        generator: torch.Generator or int seed (same seed, same output); None follows torch's
            global seed.
        max_draws: exact/auto: draw budget per step (``DrawBudgetExceeded`` beyond it).
        **options: the other sampling options of :class:`~implicit_temperature.core.options.
            SampleOptions` (share_pool, max_lanes, estimator, progress), applied per step; all
            but ``num_outputs`` (one chunk per step) and ``generator`` (above).
        return_dict_in_generate: return a :class:`CALMGenerateOutput` with the statistics.
        decode_chunk_size: latents per ``ae_model.decoder`` call (bounds the logits held at
            once to ``decode_chunk_size * K * V``); None: automatic, see :class:`CALMAdapter`.

    Returns:
        LongTensor ``(B, L + new)``, new <= max_new_tokens (smaller when every sequence ended).

    Note: the chunk law at T is exact per step (method ``"exact"``), which is the
    chunk-level temperature of the CALM paper, not the temperature of the whole sequence.
    """
    check_calm_model(model)
    t = check_temperature(temperature)
    opts = SampleOptions.from_kwargs(options, where="generate()", exclude=_NOT_PER_STEP)
    if opts.method == "exact" and t > 1:
        raise ValueError(
            f"method='exact' needs temperature <= 1 (got {t}): no black-box algorithm samples "
            "P^(1/T) exactly for T > 1; use method='batch'"
        )

    def pick(adapter: CALMAdapter, g: torch.Generator, out: CALMGenerateOutput) -> torch.Tensor:
        if t == 1.0:
            out.draws += adapter.num_problems
            return adapter.draw(1, generator=g)[:, 0, :]
        with warnings.catch_warnings():  # one AccuracyWarning per generate() call, below
            warnings.simplefilter("ignore", AccuracyWarning)
            res = temperature_sample(
                adapter.draw,
                t,
                key=adapter.quantize,
                batched=True,
                advice=CALM_ADVICE,
                **{**opts.as_kwargs(), "generator": g, "on_inaccurate": "warn"},
            )
        out.draws += res.draws
        out.methods.append(res.method)
        out.plans.append(res.plan if res.method == "exact" else None)
        out.diagnostics.append(res.diagnostics)
        out.accuracies.append(res.accuracy)
        if res.cascade_level is not None:
            out.cascade_levels.append(res.cascade_level[:, 0])
        return res.samples[:, 0, :]

    out = decode_chunks(
        model,
        input_ids,
        pick,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        generator=generator,
        decode_chunk_size=decode_chunk_size,
    )
    _check_steps(out, opts, t)
    return out if return_dict_in_generate else out.sequences


def _check_steps(out: CALMGenerateOutput, opts: SampleOptions, t: float) -> None:
    """One AccuracyWarning (or InaccurateResultError) for the whole call when some steps missed
    the tolerance, attributed to the caller's line."""
    missed = [a for a in out.accuracies if a is not None and not a.meets]
    if not missed:
        return
    known = [a.estimate for a in missed if a.known]
    worst = f"worst estimated TV {max(known):.3g}" if known else "TV unknown"
    unknown = len(missed) - len(known)
    levels = [lv for lv in out.cascade_levels if lv.numel()]
    eff = ""
    if levels:
        mean = float(torch.cat(levels).double().mean())
        if 0 < mean < 1.0 / t * (1 - 1e-9):
            eff = f"; the batch cascade stepped down: chunks correspond to T ~ {1 / mean:.3g}"
    message = (
        f"{len(missed)} of {len(out.accuracies)} decoding steps missed tolerance="
        f"{opts.tolerance:g} ({worst}"
        + (f", {unknown} unknown" if unknown and known else "")
        + f") at T={t:g}{eff}; {CALM_ADVICE}"
    )
    if opts.on_inaccurate == "raise":
        raise InaccurateResultError(message, out)
    warn(message, AccuracyWarning)


generate.__signature__ = keyword_signature(  # type: ignore[attr-defined]
    generate, exclude=_NOT_PER_STEP
)


PickFn = Callable[[CALMAdapter, torch.Generator, CALMGenerateOutput], torch.Tensor]


@torch.no_grad()
def decode_chunks(
    model: Any,
    input_ids: torch.Tensor,
    pick: PickFn,
    *,
    max_new_tokens: int,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    generator: torch.Generator | int | None = None,
    decode_chunk_size: int | None = None,
) -> CALMGenerateOutput:
    """The decoding loop under :func:`generate`, with the chunk choice left to ``pick``.

    Each step runs the backbone on the last chunk with the KV cache (the whole prompt at step 0;
    the cache keyword, ``past_key_values`` or ``cache``, is read from the backbone's signature)
    and calls ``pick(adapter, generator, out)`` with a :class:`CALMAdapter` over the unfinished
    rows' hidden states; ``pick`` returns their next chunks ``(B_active, K)``. Arguments and
    EOS/padding rules as in :func:`generate`.
    """
    check_calm_model(model)
    input_ids = check_input_ids(model, input_ids)
    max_new_tokens = positive_int("max_new_tokens", max_new_tokens)
    decode_chunk_size = check_decode_chunk_size(decode_chunk_size)
    device = model_device(model)
    eos = _eos_tensor(eos_token_id, device)
    if pad_token_id is None:
        pad_token_id = getattr(getattr(model, "config", None), "pad_token_id", None)
        if pad_token_id is None:
            pad_token_id = int(eos[0]) if eos is not None else 0
    g = make_generator(generator, device)

    k = model.patch_size
    b, prompt_len = input_ids.shape
    steps = math.ceil(max_new_tokens / k)
    unfinished = torch.ones(b, dtype=torch.bool, device=device)
    all_rows = torch.arange(b, device=device)
    out = CALMGenerateOutput(sequences=input_ids)
    chunks: list[torch.Tensor] = []
    past = None
    keyword = cache_keyword(model.transformer)

    embeds = model.embed_proj(
        model.transformer.embed_tokens(input_ids).reshape(b, prompt_len // k, -1)
    )
    for step in range(steps):
        hidden, past = backbone_forward(model, embeds, cache=past, use_cache=True, keyword=keyword)
        hidden = hidden[:, -1, :]
        rows = all_rows if eos is None or step == 0 else unfinished.nonzero().squeeze(1)
        adapter = CALMAdapter(
            model, hidden_states=hidden.index_select(0, rows), decode_chunk_size=decode_chunk_size
        )
        picked = pick(adapter, g, out)
        chunk = torch.full((b, k), pad_token_id, dtype=torch.long, device=device)
        chunk.index_copy_(0, rows, picked.to(torch.long))
        if eos is not None:
            is_eos = torch.isin(chunk, eos) & unfinished[:, None]
            after = (is_eos.cumsum(dim=1) - is_eos.long()) > 0  # strictly after first EOS
            chunk = chunk.masked_fill(after, pad_token_id)
            unfinished = unfinished & ~is_eos.any(dim=1)
        chunks.append(chunk)
        out.steps = step + 1
        if step == steps - 1 or (eos is not None and not bool(unfinished.any())):
            break
        embeds = model.embed_proj(model.transformer.embed_tokens(chunk).reshape(b, 1, -1))

    new = torch.cat(chunks, dim=1)[:, :max_new_tokens]
    out.sequences = torch.cat([input_ids, new], dim=1)
    return out
