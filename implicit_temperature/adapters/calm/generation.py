"""Chunk-by-chunk CALM decoding at any temperature, B prompts at once, with a KV cache.

:func:`generate` takes the keywords of transformers' ``generate()`` where they mean something for
CALM: ``attention_mask`` with left padding (prompts of different lengths), ``num_return_sequences``,
``do_sample=False`` / ``temperature=0`` (mode decoding), ``stop_strings`` with ``tokenizer``,
``stopping_criteria``, ``streamer``, and a per-output ``finish_reasons`` in the dict output.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from ...core import temperature_sample
from ...core.errors import (
    AccuracyWarning,
    InaccurateResultError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from ...core.options import (
    REFERENCE_NUM_SAMPLES,
    SampleOptions,
    keyword_signature,
    positive_int,
)
from ...core.rows import RowGenerators
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
from .mode import mode_chunks
from .stopping import EOS, STOP, StopStringCriteria, check_stop_strings, finish_reasons

#: SampleOptions that generate() does not take: one output per step, its own generator, and
#: dry_run (a decoding step's pilot depends on the steps before it: there is no dry run of a
#: whole generate() call; ``implicit_temperature.estimate`` on one step's draw is the dry run)
_NOT_PER_STEP = ("num_outputs", "generator", "dry_run")
#: What CALM's warnings advise: its key is the chunk itself, there is no quantizer to coarsen.
CALM_ADVICE = CALMAdapter.accuracy_advice
#: ``max_new_tokens`` when none is given (transformers' own default is a total length of 20).
DEFAULT_MAX_NEW_TOKENS = 32

GeneratorArg = torch.Generator | int | None | Sequence[torch.Generator | int]


@dataclass
class CALMGenerateOutput:
    """What ``generate(..., return_dict_in_generate=True)`` returns.

    sequences:  LongTensor (B * num_return_sequences, L + new): prompts followed by the new tokens.
    steps:      chunks generated (decoding steps run).
    draws:      next-chunk draws spent in total (all steps, all prompts).
    finish_reasons: per output, ``"eos"`` (an EOS token), ``"stop"`` (a stop string or stopping
                criterion) or ``"length"`` (max_new_tokens reached).
    cascade_levels: batch method: per step, float64 (B_active,) power s the selection used
                (below 1/T where the N draws held no outcome often enough: raise num_samples).
    methods:    per step at T != 1, the method the core used ("exact", "batch" or, for mode
                decoding, "mode"; with method="auto" it may differ between steps).
    plans:      per step at T != 1, the exact method's collision tree (None for batch).
    diagnostics: per step at T != 1, the core's :class:`~implicit_temperature.core.Diagnostics`
                (distinct keys and singleton share of the draws the step looked at).
    accuracies: per step at T != 1, the core's :class:`~implicit_temperature.core.Accuracy`
                (estimated TV of the step's chunk law to its tempered law). One
                AccuracyWarning per ``generate`` call sums them up.
    estimated_tv: per step, the accuracy estimate of the core's result where it carries one
                (``estimated_tv``; empty when the installed core gives none).
    """

    sequences: torch.Tensor
    steps: int = 0
    draws: int = 0
    finish_reasons: list[str] = field(default_factory=list)
    cascade_levels: list[torch.Tensor] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    plans: list[str | None] = field(default_factory=list)
    diagnostics: list[Any] = field(default_factory=list)
    accuracies: list[Any] = field(default_factory=list)
    estimated_tv: list[Any] = field(default_factory=list)


def _eos_tensor(eos_token_id: Any, device: torch.device) -> torch.Tensor | None:
    if eos_token_id is None:
        return None
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)
    if not ids or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
        raise InvalidArgumentError(
            f"eos_token_id must be a token id >= 0 or a list of them, got {eos_token_id!r}"
        )
    return torch.tensor(ids, dtype=torch.long, device=device)


def _is_mode(temperature: Any, do_sample: bool) -> bool:
    if not isinstance(do_sample, bool):
        raise InvalidArgumentTypeError(f"do_sample must be True or False, got {do_sample!r}")
    number = isinstance(temperature, (int, float)) and not isinstance(temperature, bool)
    return not do_sample or (number and temperature == 0)


def _draw_generator(g: torch.Generator | RowGenerators) -> Any:
    """What ``draw``/``temperature_sample`` take: the generator, or the rows' list."""
    return g.generators if isinstance(g, RowGenerators) else g


def sampling_pick(t: float, opts: SampleOptions) -> PickFn:
    """The chunk choice at temperature ``t`` through the core sampler with ``opts`` (one plain
    draw at T = 1). Takes per-row generators (``pick.row_generators``) with every method: the
    core decides each row from its own stream (see core/rows.py)."""

    def pick(adapter: CALMAdapter, g: Any, out: CALMGenerateOutput) -> torch.Tensor:
        gen = _draw_generator(g)
        if t == 1.0:
            out.draws += adapter.num_problems
            return adapter.draw(1, generator=gen)[:, 0, :]
        with warnings.catch_warnings():  # one AccuracyWarning per generate() call, below
            warnings.simplefilter("ignore", AccuracyWarning)
            res = temperature_sample(
                adapter.draw,
                t,
                key=adapter.quantize,
                batched=True,
                advice=CALM_ADVICE,
                **{**opts.as_kwargs(), "generator": gen, "on_inaccurate": "warn"},
            )
        out.draws += res.draws
        out.methods.append(res.method)
        out.plans.append(res.plan if res.method == "exact" else None)
        out.diagnostics.append(res.diagnostics)
        out.accuracies.append(res.accuracy)
        if res.cascade_level is not None:
            out.cascade_levels.append(res.cascade_level[:, 0])
        tv = getattr(res, "estimated_tv", None)  # the accuracy estimate, where the core has one
        if tv is not None:
            out.estimated_tv.append(tv)
        return res.samples[:, 0, :]

    pick.row_generators = True  # type: ignore[attr-defined]
    return pick


def mode_pick(num_samples: int) -> PickFn:
    """Mode decoding: the most frequent of ``num_samples`` draws (see :mod:`.mode`); takes
    per-row generators."""

    def pick(adapter: CALMAdapter, g: Any, out: CALMGenerateOutput) -> torch.Tensor:
        out.draws += adapter.num_problems * num_samples
        out.methods.append("mode")
        return mode_chunks(adapter, num_samples, _draw_generator(g))

    pick.row_generators = True  # type: ignore[attr-defined]
    return pick


def _expand(
    input_ids: Any, attention_mask: Any, generator: GeneratorArg, n: int
) -> tuple[Any, Any, GeneratorArg]:
    """``num_return_sequences``: each prompt (and its mask and generator) n times, adjacent."""
    n = positive_int("num_return_sequences", n)
    if isinstance(generator, (list, tuple)):
        rows = getattr(input_ids, "shape", (len(generator),))[0]
        if len(generator) != rows:
            raise InvalidArgumentError(
                f"generator is a list of {len(generator)}, but there are {rows} prompts: give "
                "one generator (or int seed) per prompt, or a single one for the whole batch"
            )
        if n > 1:  # the n outputs of a prompt share its generator (one object, one stream)
            gens = [make_generator(g) for g in generator]
            generator = [g for g in gens for _ in range(n)]
    if n == 1 or not isinstance(input_ids, torch.Tensor):
        return input_ids, attention_mask, generator
    if isinstance(attention_mask, torch.Tensor):
        attention_mask = attention_mask.repeat_interleave(n, dim=0)
    return input_ids.repeat_interleave(n, dim=0), attention_mask, generator


@torch.no_grad()
def generate(
    model: Any,
    input_ids: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    do_sample: bool = True,
    num_return_sequences: int = 1,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    stop_strings: str | Sequence[str] | None = None,
    tokenizer: Any = None,
    stopping_criteria: Sequence[Callable[..., torch.Tensor]] | None = None,
    streamer: Any = None,
    generator: GeneratorArg = None,
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
        attention_mask: ``(B, L)`` 1 on prompt tokens, 0 on pads, padded on the **left** (as
            transformers does for decoder-only models; :func:`.prompts.left_pad` builds both).
            Each prompt's own length must be a multiple of K, so pads fill whole chunks; the
            backbone then gets a chunk-level mask and position ids. None: no padding.
        temperature: T > 0 (default 1.0: one draw per step, plain ancestral sampling). T = 0
            means mode decoding, like ``do_sample=False``.
        max_new_tokens: at most this many new tokens (``ceil(max_new_tokens / K)`` steps; the last
            chunk is cut to fit). Default :data:`DEFAULT_MAX_NEW_TOKENS`.
        do_sample: False: mode decoding, the T -> 0 limit of the batch rule: the most frequent
            of ``num_samples`` draws per step (see :mod:`.mode`; approximate in N).
        num_return_sequences: outputs per prompt (rows ``b * n ... b * n + n - 1`` are prompt b's).
        method: ``"auto"`` (default: per step, a small pilot plans the exact method; exact
            where its planned cost fits, else batch; any T), ``"batch"`` (N = ``num_samples``
            draws per step and prompt; any T; approximate) or ``"exact"`` (exact P^(1/T) per
            chunk; T <= 1; random cost).
        plan: exact method: ``"auto"`` (a planned collision tree), ``"flat"`` or a tree such
            as ``"2*(2+2)"`` (see :func:`implicit_temperature.temperature_sample`).
        num_samples: N of the batch method, of mode decoding and the largest pilot of ``"auto"``.
        eos_token_id: token id (or list of ids) that ends a sequence; None: never stop early.
            A chunk containing it finishes its sequence: the tokens after the first EOS in that
            chunk and every later chunk are ``pad_token_id``. Decoding stops when all are done.
        pad_token_id: filler after EOS; default ``model.config.pad_token_id``, else the first
            ``eos_token_id``.
        stop_strings: a string or list: a sequence whose new text contains one is done (finish
            reason ``"stop"``); needs ``tokenizer``. The chunk that completes it is kept.
        tokenizer: decodes the new tokens for ``stop_strings`` (``tokenizer.decode(ids)``).
        stopping_criteria: callables ``(sequences (B, L'), scores=None) -> BoolTensor (B,)``
            (transformers' ``StoppingCriteria`` contract), called after every chunk.
        streamer: transformers' streamer contract: ``put(prompt ids)`` once, then
            ``put(chunk (B, K))`` per step (pads for finished rows), then ``end()``.
        generator: torch.Generator or int seed (same seed, same output); None follows torch's
            global seed. A list of B generators/seeds gives each prompt its own stream: a
            prompt's output then depends only on its own seed, never on its batch-mates. The
            core still decides all rows in one call per step, whatever the method (one stream
            per row; auto and planned exact plan each row from its own pilot, see
            core/rows.py).
        max_draws: exact/auto: draw budget per step (``DrawBudgetExceeded`` beyond it).
        **options: the other sampling options of :class:`~implicit_temperature.core.options.
            SampleOptions` (share_pool, max_lanes, estimator, progress), applied per step; all
            but ``num_outputs`` (one chunk per step) and ``generator`` (above).
        return_dict_in_generate: return a :class:`CALMGenerateOutput` with the statistics.
        decode_chunk_size: latents per ``ae_model.decoder`` call (bounds the logits held at
            once to ``decode_chunk_size * K * V``); None: automatic, see :class:`CALMAdapter`.

    Returns:
        LongTensor ``(B * num_return_sequences, L + new)``, new <= max_new_tokens (smaller when
        every sequence ended).

    Note: the chunk law at T is exact per step (method ``"exact"``), which is the
    chunk-level temperature of the CALM paper, not the temperature of the whole sequence.
    """
    check_calm_model(model)
    opts = SampleOptions.from_kwargs(options, where="generate()", exclude=_NOT_PER_STEP)
    t: float | None = None  # mode decoding: the T -> 0 limit, no tolerance to check
    if _is_mode(temperature, do_sample):
        n = REFERENCE_NUM_SAMPLES if opts.num_samples == "auto" else int(opts.num_samples)
        pick = mode_pick(n)  # mode decoding has no tolerance to choose N for
    else:
        t = check_temperature(temperature)
        if opts.method == "exact" and t > 1:
            raise InvalidArgumentError(
                f"method='exact' needs temperature <= 1 (got {t}): no black-box algorithm "
                "samples P^(1/T) exactly for T > 1; use method='batch'"
            )
        pick = sampling_pick(t, opts)
    input_ids, attention_mask, generator = _expand(
        input_ids, attention_mask, generator, num_return_sequences
    )
    criteria = list(stopping_criteria or ())
    stops = check_stop_strings(stop_strings)
    if stops:
        prompt_length = input_ids.shape[1] if isinstance(input_ids, torch.Tensor) else 0
        criteria.append(StopStringCriteria(tokenizer, stops, prompt_length))
    out = decode_chunks(
        model,
        input_ids,
        pick,
        attention_mask=attention_mask,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        generator=generator,
        decode_chunk_size=decode_chunk_size,
        stopping_criteria=criteria,
        streamer=streamer,
    )
    if t is not None:
        _check_steps(out, opts, t)
    return out if return_dict_in_generate else out.sequences


def _check_steps(out: CALMGenerateOutput, opts: SampleOptions, t: float) -> None:
    """One AccuracyWarning (or InaccurateResultError) for the whole call when some steps missed
    the tolerance, attributed to the caller's line."""
    missed = [a for a in out.accuracies if a is not None and a.estimated and not a.meets]
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


#: ``pick(adapter, generator, out)`` -> next chunks (B_active, K); ``generator`` is one stream,
#: or a :class:`RowGenerators` (one per row) when the pick sets ``pick.row_generators = True``.
PickFn = Callable[[CALMAdapter, Any, CALMGenerateOutput], torch.Tensor]


class RowGroup(NamedTuple):
    """Rows (LongTensor indices into the batch) whose chunks one ``pick`` call chooses per step:
    ``generator`` one stream for them all, or :class:`RowGenerators` (one per row, aligned with
    ``rows``); ``pick`` the group's own (None: the ``pick`` of :func:`decode_chunks`)."""

    rows: torch.Tensor
    generator: torch.Generator | RowGenerators
    pick: PickFn | None = None


def chunk_attention_mask(
    attention_mask: Any, input_ids: torch.Tensor, patch_size: int
) -> torch.Tensor | None:
    """Token mask ``(B, L)`` -> chunk mask LongTensor ``(B, L / K)``, or None when nothing is
    padded. Raises ``ValueError`` for a mask that is not left padding in whole chunks."""
    if attention_mask is None:
        return None
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
        raise InvalidArgumentError(
            f"attention_mask must be a tensor of the shape of input_ids {tuple(input_ids.shape)}, "
            f"got {getattr(attention_mask, 'shape', type(attention_mask).__name__)}"
        )
    mask = attention_mask.to(device=input_ids.device, dtype=torch.long)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise InvalidArgumentError("attention_mask must hold only 0 (pad) and 1 (token)")
    if bool(mask.all()):
        return None
    b, length = mask.shape
    chunks = mask.reshape(b, length // patch_size, patch_size)
    if not bool((chunks == chunks[..., :1]).all()):
        raise InvalidArgumentError(
            f"attention_mask pads part of a chunk: each prompt's length must be a multiple of "
            f"the model's K={patch_size}, so that pads fill whole chunks"
        )
    cmask = chunks[..., 0]
    if bool((cmask[:, 1:] < cmask[:, :-1]).any()) or not bool(cmask[:, -1].all()):
        raise InvalidArgumentError(
            "attention_mask is not left padding (pads must come before the prompt, as with "
            "tokenizer(padding_side='left'); a CALM continues after the last chunk)"
        )
    if not bool(cmask.any(dim=1).all()):
        raise InvalidArgumentError(
            "attention_mask masks a whole prompt: each row needs one chunk at least"
        )
    return cmask


def row_streams(generators: Sequence[torch.Generator]) -> RowGenerators:
    """One stream per row from a per-row list in which rows may share a generator object (the
    ``num_return_sequences`` copies of a prompt): a generator listed once is used as is; one
    listed k > 1 times seeds k children from k draws of its own stream, in row order. So each
    row's stream is a function of its prompt's generator alone."""
    counts: dict[int, int] = {}
    for g in generators:
        counts[id(g)] = counts.get(id(g), 0) + 1
    children: dict[int, list[torch.Generator]] = {}
    out = []
    for g in generators:
        if counts[id(g)] == 1:
            out.append(g)
            continue
        if id(g) not in children:
            seeds = torch.randint(0, 2**62, (counts[id(g)],), generator=g, device=g.device)
            children[id(g)] = [make_generator(int(x), g.device) for x in seeds.cpu()][::-1]
        out.append(children[id(g)].pop())
    return RowGenerators(out)


def row_groups(
    generator: GeneratorArg, b: int, device: torch.device, per_row: bool = False
) -> list[RowGroup]:
    """The row groups of ``generator``: one group for a single generator; with a list, one group
    per distinct generator object (the rows ``num_return_sequences`` copies share), or, when
    the pick takes per-row generators (``per_row``), one group of all rows with one stream each
    (:func:`row_streams`)."""
    if not isinstance(generator, (list, tuple)):
        return [RowGroup(torch.arange(b, device=device), make_generator(generator, device))]
    if len(generator) != b:
        raise InvalidArgumentError(
            f"generator is a list of {len(generator)} for {b} rows: give one per row"
        )
    gens = [make_generator(g, device) for g in generator]
    if per_row:
        return [RowGroup(torch.arange(b, device=device), row_streams(gens))]
    rows: dict[int, list[int]] = {}
    for i, g in enumerate(gens):
        rows.setdefault(id(g), []).append(i)
    by_id = {id(g): g for g in gens}
    return [RowGroup(torch.tensor(r, device=device), by_id[k]) for k, r in rows.items()]


def _positions(cmask: torch.Tensor | None) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Backbone keywords for the prompt pass: chunk mask and position ids (as transformers'
    generate builds them for left padding), and each row's next position."""
    if cmask is None:
        return {}, None
    position_ids = (cmask.cumsum(dim=1) - 1).masked_fill(cmask == 0, 1)
    return {"attention_mask": cmask, "position_ids": position_ids}, cmask.sum(dim=1)


def _pad_token(model: Any, pad_token_id: int | None, eos: torch.Tensor | None) -> int:
    """The pad token: ``pad_token_id`` if given, else the model config's, else the first EOS
    token, else 0."""
    if pad_token_id is None:
        pad_token_id = getattr(getattr(model, "config", None), "pad_token_id", None)
        if pad_token_id is None:
            pad_token_id = int(eos[0]) if eos is not None else 0
    return pad_token_id


def _choose_chunk(
    model: Any,
    hidden: torch.Tensor,
    groups: Sequence[RowGroup],
    pick: PickFn,
    out: CALMGenerateOutput,
    *,
    active: torch.Tensor | None,
    pad_token_id: int,
    decode_chunk_size: int | None,
    device: torch.device,
) -> torch.Tensor:
    """One step's chunks ``(B, K)`` long: for each row group, its pick (the group's own, else
    ``pick``) over a :class:`CALMAdapter` on the last hidden states ``hidden`` ``(B, D)`` of its
    rows; only the rows where ``active`` (bool ``(B,)``; None: all) is set are picked (their
    per-row generators selected to match), the others are ``pad_token_id``; on ``device``."""
    b, k = hidden.shape[0], model.patch_size
    chunk = torch.full((b, k), pad_token_id, dtype=torch.long, device=device)
    for rows, g, own_pick in groups:
        if active is not None:
            keep = active.index_select(0, rows)
            rows = rows[keep]
            if rows.numel() == 0:
                continue
            if isinstance(g, RowGenerators) and rows.numel() < len(g):
                g = g.select(keep)
        adapter = CALMAdapter(
            model,
            hidden_states=hidden.index_select(0, rows),
            decode_chunk_size=decode_chunk_size,
        )
        chosen = (own_pick or pick)(adapter, g, out)
        chunk.index_copy_(0, rows, chosen.to(torch.long))
    return chunk


def _end_at_eos(
    chunk: torch.Tensor,
    eos: torch.Tensor,
    unfinished: torch.Tensor,
    codes: torch.Tensor,
    pad_token_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(chunk, unfinished, codes)`` after the EOS rule: in each unfinished row, the tokens
    strictly after its first EOS become padding, and a row with an EOS ends (code EOS)."""
    is_eos = torch.isin(chunk, eos) & unfinished[:, None]
    after = (is_eos.cumsum(dim=1) - is_eos.long()) > 0  # strictly after first EOS
    chunk = chunk.masked_fill(after, pad_token_id)
    ended = is_eos.any(dim=1)
    return chunk, unfinished & ~ended, codes.masked_fill(ended, EOS)


def _apply_stopping(
    criteria: Sequence[Callable[..., torch.Tensor]],
    so_far: torch.Tensor,
    unfinished: torch.Tensor,
    codes: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unfinished, codes)`` after the stopping criteria on the sequences ``so_far``: an
    unfinished row a criterion marks done ends (code STOP)."""
    for criterion in criteria:
        done = criterion(so_far, None).to(device=unfinished.device, dtype=torch.bool) & unfinished
        codes = codes.masked_fill(done, STOP)
        unfinished = unfinished & ~done
    return unfinished, codes


def _advance_positions(
    extra: dict[str, Any], next_pos: torch.Tensor
) -> tuple[dict[str, Any], torch.Tensor]:
    """The backbone keywords of the next one-chunk step (the chunk mask grown by one, each row's
    position id) and the positions after it."""
    ones = torch.ones((next_pos.shape[0], 1), dtype=torch.long, device=next_pos.device)
    extra = {
        "attention_mask": torch.cat([extra["attention_mask"], ones], dim=1),
        "position_ids": next_pos[:, None].clone(),
    }
    return extra, next_pos + 1


def _embed_chunks(model: Any, ids: torch.Tensor) -> torch.Tensor:
    """The backbone inputs ``(B, L / K, D)`` of token ids ``(B, L)`` (L a multiple of the patch
    size K): the token embeddings of each chunk, concatenated and projected."""
    b, length = ids.shape
    return model.embed_proj(
        model.transformer.embed_tokens(ids).reshape(b, length // model.patch_size, -1)
    )


def _finish(
    out: CALMGenerateOutput,
    input_ids: torch.Tensor,
    chunks: list[torch.Tensor],
    max_new_tokens: int,
    codes: torch.Tensor,
) -> CALMGenerateOutput:
    """``out`` with its sequences (the prompt and the first ``max_new_tokens`` generated
    tokens) and each row's finish reason from its stopping code."""
    new = torch.cat(chunks, dim=1)[:, :max_new_tokens]
    out.sequences = torch.cat([input_ids, new], dim=1)
    out.finish_reasons = finish_reasons(codes.cpu())
    return out


@torch.no_grad()
def decode_chunks(
    model: Any,
    input_ids: torch.Tensor,
    pick: PickFn,
    *,
    max_new_tokens: int,
    attention_mask: torch.Tensor | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    generator: GeneratorArg = None,
    decode_chunk_size: int | None = None,
    stopping_criteria: Sequence[Callable[..., torch.Tensor]] = (),
    streamer: Any = None,
    groups: Sequence[RowGroup] | None = None,
) -> CALMGenerateOutput:
    """The decoding loop under :func:`generate`, with the chunk choice left to ``pick``.

    Each step runs the backbone on the last chunk with the KV cache (the whole prompt at step 0;
    the cache keyword, ``past_key_values`` or ``cache``, is read from the backbone's signature)
    and calls ``pick(adapter, generator, out)`` with a :class:`CALMAdapter` over the unfinished
    rows' hidden states (once per row group when ``generator`` is a list, see
    :func:`row_groups`); ``pick`` returns their next chunks ``(B_active, K)``. ``groups``:
    explicit :class:`RowGroup` s instead (each row in exactly one; ``generator`` is then
    ignored), e.g. requests with different settings in one batch. Arguments and EOS/padding
    rules as in :func:`generate`.
    """
    check_calm_model(model)
    input_ids = check_input_ids(model, input_ids)
    max_new_tokens = positive_int("max_new_tokens", max_new_tokens)
    decode_chunk_size = check_decode_chunk_size(decode_chunk_size)
    device = model_device(model)
    eos = _eos_tensor(eos_token_id, device)
    pad_token_id = _pad_token(model, pad_token_id, eos)
    k = model.patch_size
    b = input_ids.shape[0]
    cmask = chunk_attention_mask(attention_mask, input_ids, k)
    if groups is None:
        groups = row_groups(generator, b, device, getattr(pick, "row_generators", False))

    steps = math.ceil(max_new_tokens / k)
    unfinished = torch.ones(b, dtype=torch.bool, device=device)
    codes = torch.zeros(b, dtype=torch.int8, device=device)  # stopping.LENGTH
    can_end_early = eos is not None or bool(stopping_criteria)
    out = CALMGenerateOutput(sequences=input_ids)
    chunks: list[torch.Tensor] = []
    past = None
    keyword = cache_keyword(model.transformer)
    extra, next_pos = _positions(cmask)
    if streamer is not None:
        streamer.put(input_ids.cpu())

    embeds = _embed_chunks(model, input_ids)
    for step in range(steps):
        hidden, past = backbone_forward(
            model, embeds, cache=past, use_cache=True, keyword=keyword, **extra
        )
        chunk = _choose_chunk(
            model,
            hidden[:, -1, :],
            groups,
            pick,
            out,
            active=unfinished if can_end_early and step > 0 else None,
            pad_token_id=pad_token_id,
            decode_chunk_size=decode_chunk_size,
            device=device,
        )
        if eos is not None:
            chunk, unfinished, codes = _end_at_eos(chunk, eos, unfinished, codes, pad_token_id)
        chunks.append(chunk)
        if stopping_criteria:
            so_far = torch.cat([input_ids, *chunks], dim=1)
            unfinished, codes = _apply_stopping(stopping_criteria, so_far, unfinished, codes)
        if streamer is not None:
            streamer.put(chunk.cpu())
        out.steps = step + 1
        if step == steps - 1 or (can_end_early and not bool(unfinished.any())):
            break
        embeds = _embed_chunks(model, chunk)
        if next_pos is not None:
            extra, next_pos = _advance_positions(extra, next_pos)

    if streamer is not None:
        streamer.end()
    return _finish(out, input_ids, chunks, max_new_tokens, codes)
