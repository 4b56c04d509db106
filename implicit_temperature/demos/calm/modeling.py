"""A small Continuous Autoregressive Language Model (CALM) with the reference structure.

Mirrors the structure of the CALM reference implementation (Shao et al. 2025, arXiv 2510.27688),
including its backbone: ``transformer`` is a ``transformers.LlamaModel`` built from a small
``LlamaConfig``, as in the reference, so the adapter drives the real Hugging Face cache API.

* ``model.patch_size`` (K): tokens per chunk.
* ``model.transformer``: ``transformers.LlamaModel`` over chunk embeddings, with ``embed_tokens``
  (token ids -> vectors), called as ``transformer(inputs_embeds=(B, S, H), use_cache=...)`` plus
  the cache keyword of the installed transformers version (``past_key_values`` in 4.x,
  ``cache`` in 5.24); the output's ``[0]`` is the hidden states ``(B, S, H)``.
* ``model.embed_proj``: ``(..., K * H)`` (the K token embeddings concatenated) -> ``(..., H)``.
* ``model.generative_head.sample(hidden, generator=None)``: ``(..., H)`` + uniform noise ->
  latent ``(..., D)``; one independent draw per leading index (trained with the energy score).
* ``model.ae_model.encoder(input_ids (..., L))`` -> ``(..., L / K, 2 D)`` (mean, log std) and
  ``model.ae_model.decoder(latent_states (B, S, D))`` -> token logits flattened over the chunks,
  ``(B, S * K, V)``: exactly the contract of the reference ``Decoder.forward`` (3-D latents only).

Weights are stored with safetensors next to a JSON config (:meth:`CALM.save_pretrained`,
:meth:`CALM.from_pretrained`). Needs ``transformers`` (the ``calm`` extra); tried with 4.43.0
and 5.24.0.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import InvalidArgumentError

DEFAULT_NAME = "model"


@dataclass
class CALMConfig:
    """Explicit configuration of :class:`CALM` (all sizes; no hidden defaults elsewhere)."""

    vocab_size: int = 30
    patch_size: int = 4
    latent_size: int = 4
    # autoencoder
    ae_embed_size: int = 32
    ae_hidden_size: int = 128
    # causal backbone (a transformers LlamaModel; see llama_config())
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 192
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    # generative head
    noise_size: int = 16
    head_hidden_size: int = 128
    head_num_blocks: int = 3
    # special tokens
    pad_token_id: int = 0
    eos_token_id: int = 1

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise InvalidArgumentError(
                "hidden_size must split into num_heads heads of even size (RoPE)"
            )
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", int) and (not isinstance(v, int) or v < 0):
                raise InvalidArgumentError(
                    f"config field {f.name} must be a non-negative int, got {v!r}"
                )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def llama_config(self) -> Any:
        """The ``transformers.LlamaConfig`` of the backbone (SDPA attention, no bias)."""
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads,
            rope_theta=self.rope_theta,
            rms_norm_eps=self.rms_norm_eps,
            pad_token_id=self.pad_token_id,
            eos_token_id=self.eos_token_id,
            bos_token_id=None,
            use_cache=False,
            attn_implementation="sdpa",
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CALMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidArgumentError(
                f"unknown CALMConfig fields {unknown}; known fields: {sorted(known)}"
            )
        return cls(**d)


# --------------------------------------------------------------------------------------------
# Autoencoder: K tokens <-> one latent vector
# --------------------------------------------------------------------------------------------
class ChunkEncoder(nn.Module):
    """``input_ids (..., L)`` with L a multiple of K -> ``(..., L / K, 2 D)``: mean and log std."""

    def __init__(self, config: CALMConfig) -> None:
        super().__init__()
        self.patch_size = config.patch_size
        self.embed = nn.Embedding(config.vocab_size, config.ae_embed_size)
        self.net = nn.Sequential(
            nn.Linear(config.patch_size * config.ae_embed_size, config.ae_hidden_size),
            nn.SiLU(),
            nn.Linear(config.ae_hidden_size, config.ae_hidden_size),
            nn.SiLU(),
            nn.Linear(config.ae_hidden_size, 2 * config.latent_size),
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        *lead, length = input_ids.shape
        if length % self.patch_size:
            raise InvalidArgumentError(
                f"encoder input length {length} is not a multiple of K={self.patch_size}"
            )
        e = self.embed(input_ids).reshape(*lead, length // self.patch_size, -1)
        return self.net(e)


class ChunkDecoder(nn.Module):
    """``latent_states (B, S, D)`` -> token logits ``(B, S * K, V)``: the K token logits of every
    latent, flattened over the chunks. This is exactly the reference ``Decoder.forward``
    contract: 3-D latents only (anything else is a ``ValueError``), flattened logits out."""

    def __init__(self, config: CALMConfig) -> None:
        super().__init__()
        self.patch_size = config.patch_size
        self.vocab_size = config.vocab_size
        self.net = nn.Sequential(
            nn.Linear(config.latent_size, config.ae_hidden_size),
            nn.SiLU(),
            nn.Linear(config.ae_hidden_size, config.ae_hidden_size),
            nn.SiLU(),
            nn.Linear(config.ae_hidden_size, config.patch_size * config.vocab_size),
        )

    def forward(self, latent_states: torch.Tensor) -> torch.Tensor:
        if latent_states.dim() != 3:
            raise InvalidArgumentError(
                f"the decoder takes latents (B, S, D), got shape {tuple(latent_states.shape)}"
            )
        b, s, _ = latent_states.shape
        return self.net(latent_states).reshape(b, s * self.patch_size, self.vocab_size)


class Autoencoder(nn.Module):
    """The (frozen at CALM-training time) chunk autoencoder: ``encoder`` and ``decoder``."""

    def __init__(self, config: CALMConfig) -> None:
        super().__init__()
        self.encoder = ChunkEncoder(config)
        self.decoder = ChunkDecoder(config)


# --------------------------------------------------------------------------------------------
# Generative head: hidden state + uniform noise -> latent
# --------------------------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    def __init__(self, size: int, cond: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(size, elementwise_affine=False)
        self.film = nn.Linear(cond, 2 * size)
        self.fc1 = nn.Linear(size, size)
        self.fc2 = nn.Linear(size, size)

    def forward(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        h = self.norm(x) * (1 + scale) + shift
        return x + self.fc2(F.silu(self.fc1(h)))


class MLPGenerator(nn.Module):
    """Energy-score generative head: ``sample(hidden (..., H))`` -> one latent ``(..., D)`` per
    leading index, from noise ``U(-1/2, 1/2)^noise_size`` pushed through a conditioned MLP."""

    def __init__(self, config: CALMConfig) -> None:
        super().__init__()
        self.noise_size = config.noise_size
        width = config.head_hidden_size
        self.noise_in = nn.Linear(config.noise_size, width)
        self.cond = nn.Sequential(nn.Linear(config.hidden_size, width), nn.SiLU())
        self.blocks = nn.ModuleList(
            ResidualBlock(width, width) for _ in range(config.head_num_blocks)
        )
        self.out_norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, config.latent_size)

    #: ``sample`` takes a list of generators, one per row of the first dimension (the calm
    #: adapter then draws every row of a batch from its own stream in one call).
    row_generators = True

    def _noise(
        self, hidden_states: torch.Tensor, generator: torch.Generator | list | None
    ) -> torch.Tensor:
        shape = (*hidden_states.shape[:-1], self.noise_size)
        kw = dict(device=hidden_states.device, dtype=hidden_states.dtype)
        if not isinstance(generator, (list, tuple)):
            return torch.rand(shape, generator=generator, **kw) - 0.5
        if len(generator) != shape[0]:
            raise InvalidArgumentError(
                f"{len(generator)} generators for {shape[0]} rows: give one per row"
            )
        # one torch.rand per row: a torch.Generator is a single stream (loop over rows only)
        return torch.stack([torch.rand(shape[1:], generator=g, **kw) for g in generator]) - 0.5

    def sample(
        self, hidden_states: torch.Tensor, generator: torch.Generator | list | None = None
    ) -> torch.Tensor:
        """``hidden_states (..., H)`` -> latents ``(..., D)``, one fresh noise draw per leading
        index. Leading dims that are broadcast views (stride 0, e.g. from ``expand``) have their
        conditioning computed once and broadcast, so n draws per context cost little more than
        n noise passes. ``generator``: one, or a list with one per row of the first dimension
        (row b's noise from ``generator[b]`` alone)."""
        noise = self._noise(hidden_states, generator)
        base = hidden_states
        for d in range(hidden_states.dim() - 1):
            if hidden_states.stride(d) == 0 and hidden_states.shape[d] > 1:
                base = base.narrow(d, 0, 1)
        c = self.cond(base)
        films = [block.film(c).chunk(2, dim=-1) for block in self.blocks]
        x = self.noise_in(noise) + c
        for block, (scale, shift) in zip(self.blocks, films, strict=True):
            x = block(x, scale, shift)
        return self.out(self.out_norm(x))

    forward = sample


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
class CALM(nn.Module):
    """Continuous autoregressive LM: one latent vector (-> K tokens) per step.

    Inference only needs the attributes listed in the module docstring; see
    :func:`implicit_temperature.adapters.calm.generate` for decoding.
    """

    def __init__(self, config: CALMConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_size = config.patch_size
        self.transformer = build_backbone(config)
        self.embed_proj = nn.Linear(config.patch_size * config.hidden_size, config.hidden_size)
        self.generative_head = MLPGenerator(config)
        self.ae_model = Autoencoder(config)

    def chunk_embeds(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids (B, L)`` (L a multiple of K) -> backbone inputs ``(B, L / K, H)``."""
        b, length = input_ids.shape
        if length % self.patch_size:
            raise InvalidArgumentError(
                f"input length {length} is not a multiple of K={self.patch_size}"
            )
        e = self.transformer.embed_tokens(input_ids).reshape(b, length // self.patch_size, -1)
        return self.embed_proj(e)

    def save_pretrained(
        self, directory: str | Path, name: str = DEFAULT_NAME, extra: dict[str, Any] | None = None
    ) -> None:
        """Write ``{name}.safetensors`` and ``{name}.json`` (config plus ``extra`` metadata)."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(d / f"{name}.safetensors"))
        payload = {"model_type": "calm-demo", "config": self.config.to_dict(), **(extra or {})}
        (d / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | Path, name: str = DEFAULT_NAME) -> CALM:
        """Load a model written by :meth:`save_pretrained` (local files only, no network)."""
        from safetensors.torch import load_file

        d = Path(directory)
        cfg_path, w_path = d / f"{name}.json", d / f"{name}.safetensors"
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found; run scripts/train_calm.py to create it")
        payload = json.loads(cfg_path.read_text())
        model = cls(CALMConfig.from_dict(payload["config"]))
        model.load_state_dict(load_file(str(w_path)))
        return model.eval()


def build_backbone(config: CALMConfig) -> nn.Module:
    """``transformers.LlamaModel(config.llama_config())``: the causal backbone, as in the
    reference (hidden states of the last layer, after the final RMSNorm)."""
    try:
        from transformers import LlamaModel
    except ImportError as exc:  # pragma: no cover - transformers is in the calm extra
        raise ImportError(
            "the demo CALM model's backbone is a transformers LlamaModel: "
            "pip install 'implicit-temperature[calm]'"
        ) from exc
    return LlamaModel(config.llama_config())


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "CALM",
    "Autoencoder",
    "CALMConfig",
    "ChunkDecoder",
    "ChunkEncoder",
    "MLPGenerator",
    "build_backbone",
    "count_parameters",
]
