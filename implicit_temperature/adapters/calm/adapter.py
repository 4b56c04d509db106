"""The ``calm`` adapter: next-chunk draws from a CALM model for B contexts at once.

The adapter only touches the attributes of the CALM reference structure (arXiv 2510.27688):
``patch_size``, ``transformer`` (with ``embed_tokens``; called with ``inputs_embeds=`` and
``use_cache=``), ``embed_proj``, ``generative_head.sample`` and ``ae_model.decoder`` (latents
``(B, S, D)`` -> logits ``(B, S * K, V)``). So it drives the shipped demo model and a checkpoint
of the reference implementation alike.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.drawing import accepts_generator
from ...core.errors import InvalidArgumentError, InvalidArgumentTypeError
from ...core.options import is_positive_int
from ...core.validation import make_generator
from ...plugins.adapter import Adapter
from .backbone import backbone_forward
from .rng import seeded_global_rng

#: Default bound on the logits of one decoder call (bytes), see :func:`decode_latents`.
DEFAULT_DECODE_BYTES = 256 * 2**20

REQUIRED_ATTRIBUTES: tuple[str, ...] = (
    "patch_size",
    "transformer",
    "transformer.embed_tokens",
    "embed_proj",
    "generative_head",
    "generative_head.sample",
    "ae_model",
    "ae_model.decoder",
)


def missing_calm_attributes(model: Any) -> list[str]:
    """The attributes of the CALM structure that ``model`` lacks (empty list: it has them all)."""
    missing = []
    for path in REQUIRED_ATTRIBUTES:
        obj = model
        for part in path.split("."):
            try:
                obj = getattr(obj, part, None)
            except Exception:  # noqa: BLE001 - an odd __getattr__ means "not a CALM model"
                obj = None
            if obj is None:
                break
        if obj is None:
            missing.append(path)
    if "patch_size" not in missing:
        k = model.patch_size
        if not is_positive_int(k):
            missing.append("patch_size (an int >= 1)")
    for path in ("transformer", "embed_proj", "generative_head.sample", "ae_model.decoder"):
        if path not in missing:
            obj = model
            for part in path.split("."):
                obj = getattr(obj, part)
            if not callable(obj):
                missing.append(f"{path} (callable)")
    return missing


def check_calm_model(model: Any) -> None:
    """Raise ``TypeError`` naming every missing attribute when ``model`` is not a CALM model."""
    missing = missing_calm_attributes(model)
    if missing:
        raise InvalidArgumentTypeError(
            f"{type(model).__name__} is not a CALM model: missing {missing}. The calm adapter "
            "needs patch_size (K), transformer (causal backbone with embed_tokens, called with "
            "inputs_embeds=), embed_proj, generative_head.sample(hidden) and "
            "ae_model.decoder(latents (B, S, D)) -> logits (B, S*K, V); see docs/calm.md"
        )


def model_device(model: Any) -> torch.device:
    """Device of the model's token embedding (where contexts must live)."""
    weight = getattr(model.transformer.embed_tokens, "weight", None)
    return weight.device if isinstance(weight, torch.Tensor) else torch.device("cpu")


def check_input_ids(model: Any, input_ids: Any, name: str = "input_ids") -> torch.Tensor:
    """Validate token ids ``(B, L)`` for a CALM model (integer dtype, B >= 1, L a positive multiple
    of K, ids inside the vocabulary) and move them to the model's device."""
    if not isinstance(input_ids, torch.Tensor):
        raise InvalidArgumentTypeError(
            f"{name} must be a LongTensor (B, L), got {type(input_ids).__name__}"
        )
    dtype = input_ids.dtype
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        raise InvalidArgumentTypeError(
            f"{name} must hold integer token ids, got dtype {input_ids.dtype}"
        )
    if input_ids.dim() != 2:
        raise InvalidArgumentError(
            f"{name} must have shape (B, L), got {tuple(input_ids.shape)}; "
            "for one prompt use ids[None] (tokenizer.encode already returns (1, L))"
        )
    b, length = input_ids.shape
    k = model.patch_size
    if b == 0:
        raise InvalidArgumentError(f"{name} has no rows (B = 0): pass at least one prompt")
    if length == 0:
        raise InvalidArgumentError(
            f"{name} is empty (L = 0): the prompt must hold at least one chunk of {k} tokens"
        )
    if length % k:
        raise InvalidArgumentError(
            f"{name} length {length} is not a multiple of the model's patch_size K={k}: CALM reads "
            f"whole chunks, so give a prompt of {k}, {2 * k}, ... tokens (for the demo grammar "
            "every chunk is a 3-letter word plus a space or '.', e.g. 'cat saw ')"
        )
    vocab = getattr(model.transformer.embed_tokens, "num_embeddings", None)
    lo, hi = int(input_ids.min()), int(input_ids.max())
    if lo < 0 or (vocab is not None and hi >= vocab):
        raise InvalidArgumentError(
            f"{name} holds token ids outside [0, {vocab}): min {lo}, max {hi}"
        )
    return input_ids.to(device=model_device(model), dtype=torch.long)


@torch.no_grad()
def context_hidden_states(model: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """Backbone hidden state after the last chunk of each context: ``(B, L) -> (B, H)``.

    A throwaway call: ``use_cache=False``, so no KV cache is built."""
    b, length = input_ids.shape
    embeds = model.transformer.embed_tokens(input_ids).reshape(b, length // model.patch_size, -1)
    hidden, _ = backbone_forward(model, model.embed_proj(embeds), use_cache=False)
    return hidden[:, -1, :]


def default_decode_chunk_size(model: Any, latents: torch.Tensor) -> int | None:
    """Latents per decoder call that keep one call's logits ``(m, K, V)`` under
    :data:`DEFAULT_DECODE_BYTES` (counted at >= 4 bytes per logit, so a decoder that returns
    float32 logits for bf16 latents stays inside too). ``None`` when the vocabulary size V is
    unknown (``transformer.embed_tokens`` has no ``num_embeddings``)."""
    vocab = getattr(model.transformer.embed_tokens, "num_embeddings", None)
    if not is_positive_int(vocab):
        return None
    per_latent = model.patch_size * vocab * max(4, latents.element_size())
    return max(1, DEFAULT_DECODE_BYTES // per_latent)


def check_decode_chunk_size(value: Any) -> int | None:
    if value is None:
        return None
    if not is_positive_int(value):
        raise InvalidArgumentError(
            f"decode_chunk_size must be an int >= 1 (latents per decoder call) or None "
            f"(automatic: logits of one call under {DEFAULT_DECODE_BYTES // 2**20} MiB), "
            f"got {value!r}"
        )
    return value


@torch.no_grad()
def decode_latents(
    model: Any, latents: torch.Tensor, decode_chunk_size: int | None = None
) -> torch.Tensor:
    """Latents ``(M, D)`` -> chunks LongTensor ``(M, K)``: the argmax of the decoder's logits.

    The decoder is called as the reference ``Decoder.forward``: 3-D latents ``(m, 1, D)`` in
    (each latent a sequence of one chunk), logits flattened over the chunks ``(m, 1 * K, V)``
    out. It runs on slices of at most ``decode_chunk_size`` latents (default
    :func:`default_decode_chunk_size`), each reduced to its argmax before the next, so the
    logits held at once are bounded by ``decode_chunk_size * K * V`` values instead of
    ``M * K * V`` (6.6 GB in bf16 for 32 prompts x N = 200 at V = 128k in one call).
    """
    total = latents.shape[0]
    k = model.patch_size
    decoder = model.ae_model.decoder
    step = check_decode_chunk_size(decode_chunk_size) or default_decode_chunk_size(model, latents)
    out = torch.empty((total, k), dtype=torch.long, device=latents.device)
    start = 0
    while start < total:
        part = latents[start : start + (step or 1)]
        m = part.shape[0]
        logits = decoder(part[:, None, :])
        if logits.dim() != 3 or tuple(logits.shape[:2]) != (m, k):
            raise InvalidArgumentError(
                f"ae_model.decoder returned logits of shape {tuple(logits.shape)} for latents "
                f"of shape {(m, 1, latents.shape[-1])}; expected ({m}, {k}, V): the reference "
                "Decoder contract is latents (B, S, D) -> logits (B, S * K, V)"
            )
        if step is None:  # V unknown: learn it from the first latent's logits
            per_latent = k * logits.shape[-1] * max(4, logits.element_size())
            step = max(1, DEFAULT_DECODE_BYTES // per_latent)
        out[start : start + m] = logits.argmax(dim=-1)
        del logits  # free this slice's logits before the next call allocates its own
        start += m
    return out


def _on_device(g: torch.Generator, device: torch.device) -> torch.Generator:
    """``g`` itself, or (e.g. a CPU generator for a CUDA model) a generator on ``device``
    seeded from it."""
    if g.device.type == device.type:
        return g
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
    out = torch.Generator(device=device)
    out.manual_seed(seed)
    return out


def _head_latents(head: Any, h: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """One ``head.sample`` call on ``h``, its noise from ``g`` (or from the global RNG seeded
    from it, for a head that takes no generator; see :mod:`.rng`)."""
    if accepts_generator(head.sample):
        return head.sample(h, generator=g)
    if g is None:
        return head.sample(h)
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
    with seeded_global_rng(h.device, seed):
        return head.sample(h)


def _row_latents(head: Any, h: torch.Tensor, generators: Any) -> torch.Tensor:
    """Latents of ``h (B, n, H)``, row b's noise from ``generators[b]`` alone: one head call
    when the head declares ``row_generators = True`` (its ``sample`` takes the list), else one
    head call per row (a head's noise is one stream per call)."""
    if len(generators) != h.shape[0]:
        raise InvalidArgumentError(
            f"generator is a list of {len(generators)} for {h.shape[0]} contexts: give one per "
            "context"
        )
    gens = [_on_device(make_generator(g), h.device) for g in generators]
    if getattr(head, "row_generators", False) and accepts_generator(head.sample):
        return head.sample(h, generator=gens)
    return torch.cat([_head_latents(head, h[i : i + 1], g) for i, g in enumerate(gens)])


@torch.no_grad()
def sample_chunks(
    model: Any,
    hidden: torch.Tensor,
    n: int,
    generator: torch.Generator | int | None = None,
    decode_chunk_size: int | None = None,
) -> torch.Tensor:
    """``n`` next-chunk draws per row of ``hidden (B, H)``: LongTensor ``(B, n, K)``.

    One ``generative_head.sample`` call on the hidden states expanded n times ``(B, n, H)``,
    then the decoder on the ``B * n`` latents in slices (:func:`decode_latents`); the K tokens are
    the decoder's argmax. ``generator``: a torch.Generator or an int seed (same seed, same
    chunks); None follows torch's global RNG; or a list of B of them, row b's chunks from
    ``generator[b]`` alone (one head call when the head declares ``row_generators = True``, as
    the demo's does, else one head call per row). When the head's ``sample`` takes no ``generator``
    (the reference implementation), its noise comes from the global RNG, forked and seeded from
    ``generator`` (CPU and the model's device only, under a lock; see :mod:`.rng`).
    """
    b = hidden.shape[0]
    h = hidden[:, None, :].expand(b, n, hidden.shape[-1])
    head = model.generative_head
    if isinstance(generator, (list, tuple)):
        latents = _row_latents(head, h, generator)
    else:
        g = None if generator is None else _on_device(make_generator(generator), hidden.device)
        latents = _head_latents(head, h, g)
    if latents.dim() < 2 or latents.shape[:-1] != h.shape[:-1]:
        raise InvalidArgumentError(
            f"generative_head.sample returned latents of shape {tuple(latents.shape)} for "
            f"hidden states {tuple(h.shape)}; expected {(b, n)} + (D,)"
        )
    chunks = decode_latents(model, latents.reshape(b * n, -1), decode_chunk_size)
    return chunks.reshape(b, n, -1)


class CALMAdapter(Adapter):
    """Adapter ``calm``: one problem per context, each sample a K-token chunk.

    Options (exactly one of):
        context: LongTensor ``(B, L)``, L a positive multiple of ``model.patch_size``. The backbone
            runs once over it (lazily, at the first draw) and its last hidden state is cached, so
            the many ``draw`` calls of the exact sampler cost one head + decoder call each.
        hidden_states: ``(B, H)`` backbone hidden states to condition on directly (what
            :func:`generate` uses with its KV cache).

    And optionally:
        decode_chunk_size: latents per ``ae_model.decoder`` call (the decoder's logits are
            reduced to their argmax slice by slice, so at most ``decode_chunk_size * K * V``
            logits exist at once). None (default): as many as keep one call's logits under
            256 MiB (:data:`DEFAULT_DECODE_BYTES`): one call for a small vocabulary, 128
            latents per call for K = 4 and V = 128k.

    ``draw(n, generator=None)`` -> LongTensor ``(B, n, K)``: n i.i.d. next chunks per context from
    one batched head call (``generator``: torch.Generator or int seed, or a list of them, one
    per context drawn for, see :func:`sample_chunks`). ``quantize(samples)``
    returns the token ids themselves (keys ``(B, n, K)``): chunks are compared exactly, so
    temperature acts on the chunk law itself.
    """

    name = "calm"
    batched = True
    #: the warnings' advice: the key is the chunk itself (see generation.CALM_ADVICE)
    accuracy_advice = (
        "the key is the chunk itself (no quantizer to coarsen): raise num_samples or max_draws, "
        "or a tolerance you can accept; open-ended contexts spread the chunk law thin"
    )

    def __init__(
        self,
        model: Any,
        *,
        context: torch.Tensor | None = None,
        hidden_states: torch.Tensor | None = None,
        decode_chunk_size: int | None = None,
    ) -> None:
        check_calm_model(model)
        super().__init__(model)
        if (context is None) == (hidden_states is None):
            raise InvalidArgumentError(
                "the calm adapter needs exactly one of context= (LongTensor (B, L) of token ids) "
                "or hidden_states= ((B, H) backbone states), e.g. "
                "TemperatureSampler(model, context=tokenizer.encode('cat '))"
            )
        self.context = None if context is None else check_input_ids(model, context, "context")
        if hidden_states is not None:
            if not isinstance(hidden_states, torch.Tensor) or hidden_states.dim() != 2:
                raise InvalidArgumentError(
                    "hidden_states must be a tensor (B, H), got "
                    f"{getattr(hidden_states, 'shape', type(hidden_states).__name__)}"
                )
        self._hidden = hidden_states
        self.decode_chunk_size = check_decode_chunk_size(decode_chunk_size)

    @classmethod
    def handles(cls, model: Any) -> bool:
        """True for models with the CALM structure (patch_size, transformer.embed_tokens,
        embed_proj, generative_head.sample, ae_model.decoder); False for anything else."""
        return not missing_calm_attributes(model)

    @property
    def num_problems(self) -> int:
        src = self.context if self.context is not None else self._hidden
        return int(src.shape[0])

    @property
    def hidden_states(self) -> torch.Tensor:
        """``(B, H)``: the backbone state after each context (computed once, then cached)."""
        if self._hidden is None:
            self._hidden = context_hidden_states(self.model, self.context)
        return self._hidden

    def draw(
        self,
        n: int,
        generator: torch.Generator | int | list | None = None,
        active: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, n, K)`` chunks; with ``active`` (bool (B,)) only the active contexts' rows
        ``(B_active, n, K)`` (the exact sampler skips contexts that are already done)."""
        if not is_positive_int(n):
            raise InvalidArgumentError(f"draw(n) needs an int n >= 1, got {n!r}")
        hidden = self.hidden_states
        if active is not None:
            hidden = hidden[active.to(hidden.device)]
        return sample_chunks(
            self.model, hidden, n, generator=generator, decode_chunk_size=self.decode_chunk_size
        )

    def quantize(self, samples: torch.Tensor) -> torch.Tensor:
        if not isinstance(samples, torch.Tensor) or samples.dim() != 3:
            raise InvalidArgumentError(
                "calm samples are LongTensor (B, n, K) chunks, got "
                f"{getattr(samples, 'shape', type(samples).__name__)}"
            )
        return samples.long()
