"""Prompt preparation for CALM: whole chunks of K tokens, padded the way the reference does."""

from __future__ import annotations

import torch

from ...core.errors import InvalidArgumentError, InvalidArgumentTypeError
from ...core.options import is_positive_int

SIDES = ("right", "left")


def pad_to_chunks(
    input_ids: torch.Tensor, patch_size: int, pad_token_id: int, *, side: str = "right"
) -> torch.Tensor:
    """Pad token ids ``(B, L)`` (or ``(L,)``) up to the next multiple of ``patch_size`` (K).

    ``side="right"`` (default) appends ``pad_token_id`` after the prompt, exactly as the
    reference CALM ``generate`` does with its prompts, so a leading BOS token stays the first
    token; ``side="left"`` puts the pads before the prompt instead (the continuation then
    follows the prompt directly, but the pads precede BOS). Nothing is ever cut off: a prompt
    already a multiple of K is returned unchanged (same values, a new tensor).

    Returns LongTensor ``(B, K * ceil(L / K))`` on the device of ``input_ids`` (``(1, ...)`` for a
    1-D input). Raises ``ValueError`` for an empty prompt, ``patch_size < 1`` or a negative pad
    id, ``TypeError`` for non-integer ids.
    """
    if not isinstance(input_ids, torch.Tensor):
        raise InvalidArgumentTypeError(
            f"input_ids must be a LongTensor (B, L), got {type(input_ids).__name__}"
        )
    if (
        input_ids.dtype.is_floating_point
        or input_ids.dtype.is_complex
        or (input_ids.dtype == torch.bool)
    ):
        raise InvalidArgumentTypeError(
            f"input_ids must hold integer token ids, got dtype {input_ids.dtype}"
        )
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if input_ids.dim() != 2:
        raise InvalidArgumentError(
            f"input_ids must have shape (B, L) or (L,), got {tuple(input_ids.shape)}"
        )
    if not is_positive_int(patch_size):
        raise InvalidArgumentError(
            f"patch_size must be an int >= 1 (the model's K), got {patch_size!r}"
        )
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int) or pad_token_id < 0:
        raise InvalidArgumentError(
            f"pad_token_id must be a token id >= 0, got {pad_token_id!r} (for a reference "
            "checkpoint: model.config.pad_token_id)"
        )
    if side not in SIDES:
        raise InvalidArgumentError(f"side must be one of {SIDES}, got {side!r}")
    b, length = input_ids.shape
    if length == 0:
        raise InvalidArgumentError("input_ids is empty (L = 0): a prompt needs at least one token")
    extra = -length % patch_size
    pad = torch.full((b, extra), pad_token_id, dtype=torch.long, device=input_ids.device)
    parts = (input_ids.long(), pad) if side == "right" else (pad, input_ids.long())
    return torch.cat(parts, dim=1)


def left_pad(prompts: list[torch.Tensor], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths -> ``(input_ids, attention_mask)``, both ``(B, L_max)``,
    padded on the left as transformers does for decoder-only models.

    Each prompt is a 1-D ``(L_b,)`` or ``(1, L_b)`` LongTensor; the mask is 1 on the prompt's
    tokens and 0 on the pads. For CALM, each ``L_b`` must be a multiple of the model's K, so the
    pads fill whole chunks (``generate`` checks this)."""
    if not prompts:
        raise InvalidArgumentError("left_pad needs at least one prompt")
    rows = [p.reshape(-1).long() for p in prompts]
    if any(r.numel() == 0 for r in rows):
        raise InvalidArgumentError(
            "an empty prompt cannot be padded: give at least one chunk of tokens"
        )
    width = max(r.numel() for r in rows)
    device = rows[0].device
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for b, r in enumerate(rows):  # one copy per prompt, at assembly (not a decoding hot path)
        ids[b, width - r.numel() :] = r
        mask[b, width - r.numel() :] = 1
    return ids, mask
