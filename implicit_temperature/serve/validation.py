"""Requests -> work items, with every check that can fail before the model runs (400s)."""

from __future__ import annotations

import inspect
import secrets
from typing import Any

import torch

from ..adapters.calm.adapter import check_input_ids
from ..adapters.calm.prompts import pad_to_chunks
from ..core import temperature_sample
from .engine import CompletionWork, ImageWork
from .errors import APIError
from .protocol import CompletionRequest, ImageRequest, SamplingFields

#: Seeds of the prompts of one request: prompt p gets ``seed + p * SEED_STRIDE`` (mod 2**63), so
#: prompt 0 of a list has the seed of the same prompt sent alone.
SEED_STRIDE = 0x9E3779B97F4A7C15
MAX_STOP = 4


def core_supports(name: str) -> bool:
    """Whether the installed core takes sampling option ``name`` (a :class:`SampleOptions`
    field, which ``temperature_sample`` and CALM ``generate`` both accept)."""
    from ..core.options import SampleOptions

    return name in SampleOptions.names() or name in inspect.signature(temperature_sample).parameters


def _limit(value: int, limit: int, name: str, flag: str) -> None:
    if value > limit:
        raise APIError(
            400,
            f"{name} = {value} is over this server's limit of {limit} (start it with {flag} "
            "to change the limit)",
            name.split(" ")[0],
        )


def _common(req: SamplingFields, limits: Any) -> dict[str, Any]:
    """Core options shared by both endpoints: plan checked, tolerance where supported."""
    _limit(req.num_samples, limits.max_num_samples, "num_samples", "--max-num-samples")
    options: dict[str, Any] = {}
    if req.tolerance is not None:
        if not core_supports("tolerance"):
            raise APIError(
                400,
                "tolerance is not supported by this server's implicit-temperature version (its "
                "temperature_sample takes no tolerance=); drop it, or upgrade the server",
                "tolerance",
            )
        options["tolerance"] = req.tolerance
    if req.plan not in (None, "auto", "flat"):
        from ..core.plan import parse_tree

        try:
            parse_tree(req.plan)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the request's fault
            raise APIError(400, f"plan: {exc}", "plan") from None
    return options


def _seed(seed: int | None) -> int:
    return secrets.randbits(63) if seed is None else seed


def _is_ids(prompt: Any) -> bool:
    """A list of ints: one prompt as token ids."""
    return isinstance(prompt, list) and bool(prompt) and isinstance(prompt[0], int)


def prompt_list(prompt: Any) -> list[str | list[int]]:
    """The prompts of a request: each a string or a list of token ids (400 when empty)."""
    if isinstance(prompt, str) or _is_ids(prompt):
        return [prompt]
    prompts = list(prompt)
    if not prompts:
        raise APIError(
            400,
            "prompt is an empty list: give a string, a list of strings, a list of token ids "
            "or a list of lists of token ids",
            "prompt",
        )
    return prompts


def _token_ids(engine: Any, ids: list[int], where: str) -> torch.Tensor:
    """A prompt given as token ids -> LongTensor (L,), each id checked against the vocabulary."""
    if not ids:
        raise APIError(
            400, f"{where} is an empty list of token ids: give one id at least", "prompt"
        )
    vocab = getattr(getattr(engine.model.transformer, "embed_tokens", None), "num_embeddings", None)
    bad = [i for i in ids if i < 0 or (vocab is not None and i >= vocab)]
    if bad:
        bound = f"[0, {vocab})" if vocab is not None else "ids >= 0"
        raise APIError(
            400,
            f"{where} holds token ids outside this model's vocabulary {bound}: {bad[:5]}"
            + (" ..." if len(bad) > 5 else "")
            + "; encode the prompt with this model's tokenizer, or send it as a string",
            "prompt",
        )
    return torch.tensor(ids, dtype=torch.long)


def completion_work(engine: Any, req: CompletionRequest, limits: Any) -> CompletionWork:
    """Validate a completions request against ``engine`` (its tokenizer and model) and limits."""
    bad = req.unsupported()
    if bad is not None:
        raise APIError(400, bad[1], bad[0])
    prompts = prompt_list(req.prompt)
    _limit(len(prompts), limits.max_prompts, "prompts", "--max-prompts")
    _limit(req.n, limits.max_n, "n", "--max-n")
    _limit(req.n * len(prompts), limits.max_n, "n * prompts", "--max-n")
    _limit(req.max_tokens, limits.max_tokens, "max_tokens", "--max-tokens-limit")
    if req.method == "exact" and req.temperature > 1:
        raise APIError(
            400,
            f"method 'exact' needs temperature <= 1 (got {req.temperature}); use 'batch' or "
            "'auto' above 1",
            "method",
        )
    stop = () if req.stop is None else ((req.stop,) if isinstance(req.stop, str) else req.stop)
    if len(stop) > MAX_STOP or not all(stop):
        raise APIError(400, f"stop takes up to {MAX_STOP} non-empty strings", "stop")
    options = _common(req, limits)
    ids = []
    single = isinstance(req.prompt, str) or _is_ids(req.prompt)
    for p, text in enumerate(prompts):
        where = "prompt" if single else f"prompt[{p}]"
        try:
            if isinstance(text, str):
                tokens = engine.tokenizer.encode(text)
            else:  # token ids, given by the client
                tokens = _token_ids(engine, text, where)
            if not isinstance(tokens, torch.Tensor):  # a plain list of ids (Hugging Face)
                tokens = torch.tensor(tokens, dtype=torch.long)
            if tokens.dim() == 1:
                tokens = tokens[None]
            if limits.pad_prompts != "none":
                tokens = pad_to_chunks(
                    tokens, engine.model.patch_size, engine.pad_token_id, side=limits.pad_prompts
                )
            tokens = check_input_ids(engine.model, tokens, where)
        except (ValueError, TypeError) as exc:
            raise APIError(400, f"{where}: {exc}", "prompt") from None
        _limit(
            int(tokens.shape[-1]), limits.max_prompt_tokens, "prompt tokens", "--max-prompt-tokens"
        )
        ids.append(tokens.cpu())
    seed = req.seed
    return CompletionWork(
        prompts=ids,
        n=req.n,
        max_tokens=req.max_tokens,
        temperature=req.temperature,
        method=req.method,
        plan=req.plan,
        num_samples=req.num_samples,
        max_draws=req.max_draws,
        stop=tuple(stop),
        seeds=None
        if seed is None
        else [(seed + p * SEED_STRIDE) % 2**63 for p in range(len(prompts))],
        options=options,
    )


def image_work(engine: Any, req: ImageRequest, limits: Any) -> ImageWork:
    """Validate an images request (quantizer name, response format, limits)."""
    if req.response_format != "b64_json":
        raise APIError(
            400,
            "response_format 'url' is not supported: this server stores no files; ask for "
            "response_format='b64_json'",
            "response_format",
        )
    for name in ("size", "quality", "style"):
        if getattr(req, name) is not None:
            raise APIError(
                400, f"{name} is not supported: the pipeline's own configuration decides", name
            )
    _limit(req.n, limits.max_n, "n", "--max-n")
    if req.method == "exact" and req.temperature > 1:
        raise APIError(400, "method 'exact' needs temperature <= 1", "method")
    options = _common(req, limits)
    if req.quantizer is not None:
        from ..plugins import get_quantizers

        known = get_quantizers()
        if req.quantizer not in known:
            raise APIError(
                400,
                f"unknown quantizer {req.quantizer!r}; registered: {', '.join(sorted(known))}",
                "quantizer",
            )
        options["quantizer"] = req.quantizer
    return ImageWork(
        prompt=req.prompt,
        n=req.n,
        temperature=req.temperature,
        method=req.method,
        plan=req.plan,
        num_samples=req.num_samples,
        max_draws=req.max_draws,
        seed=_seed(req.seed),
        options=options,
        seeded=req.seed is not None,
    )
