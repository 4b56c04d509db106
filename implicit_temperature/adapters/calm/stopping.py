"""When a CALM sequence is done: EOS, stop strings and stopping criteria, and why it finished.

A stopping criterion follows transformers' ``StoppingCriteria`` contract: called as
``criterion(sequences, scores)`` with the sequences so far ``LongTensor (B, L + new)`` and
``scores=None`` (CALM has no logits), it returns ``BoolTensor (B,)``: True where that sequence is
done. :func:`~implicit_temperature.adapters.calm.generate` calls it once per decoded chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

#: Per-output finish reasons, in the order of their codes in :data:`FINISH_CODES`.
FINISH_REASONS = ("length", "eos", "stop")
LENGTH, EOS, STOP = 0, 1, 2


def finish_reasons(codes: torch.Tensor) -> list[str]:
    """int8 codes ``(B,)`` -> ``["length" | "eos" | "stop", ...]`` (one per output)."""
    return [FINISH_REASONS[c] for c in codes.tolist()]


def check_stop_strings(stop_strings: Any) -> tuple[str, ...]:
    """``None``, a string or a list of non-empty strings -> a tuple (empty: no stop strings)."""
    if stop_strings is None:
        return ()
    if isinstance(stop_strings, str):
        stop_strings = [stop_strings]
    out = tuple(stop_strings)
    if not all(isinstance(s, str) and s for s in out):
        raise ValueError(f"stop_strings must be non-empty strings, got {stop_strings!r}")
    return out


class StopStringCriteria:
    """Done when the decoded new text of a sequence contains one of ``stop_strings``.

    Decodes each sequence's tokens after ``prompt_length`` with ``tokenizer.decode`` (one call
    per sequence and step: text matching has no tensor form), so a stop string that spans two
    chunks is found too. The tokens of the chunk that completes the stop string are kept; cut
    the text at :func:`truncate_at_stop` (as OpenAI servers do) when it must not be shown.
    """

    def __init__(self, tokenizer: Any, stop_strings: Sequence[str], prompt_length: int) -> None:
        if tokenizer is None or not callable(getattr(tokenizer, "decode", None)):
            raise ValueError(
                "stop_strings need tokenizer= (an object with decode(ids) -> str), as in "
                "transformers' generate(stop_strings=..., tokenizer=...)"
            )
        self.tokenizer = tokenizer
        self.stop_strings = check_stop_strings(stop_strings)
        self.prompt_length = prompt_length

    def __call__(self, sequences: torch.Tensor, scores: Any = None) -> torch.Tensor:
        new = sequences[:, self.prompt_length :].cpu()
        done = [any(s in self.tokenizer.decode(row) for s in self.stop_strings) for row in new]
        return torch.tensor(done, dtype=torch.bool, device=sequences.device)


def truncate_at_stop(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut before the first occurrence of any stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop_strings) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
