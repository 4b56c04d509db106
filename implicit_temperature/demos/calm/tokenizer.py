"""Character-level tokenizer of the shipped demo CALM model.

Vocabulary: id 0 ``<pad>``, id 1 ``<eos>``, then one id per allowed character (space, ``.``,
``a``-``z``). Special tokens never come from text: :meth:`CharTokenizer.encode` only maps allowed
characters, and anything else is a ``ValueError`` that lists the allowed characters.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import torch

from ...core.errors import InvalidArgumentError, InvalidArgumentTypeError

PAD_TOKEN = "<pad>"
EOS_TOKEN = "<eos>"
DEFAULT_CHARACTERS = " ." + string.ascii_lowercase


class CharTokenizer:
    """Maps text to ``LongTensor (1, L)`` of character ids and back.

    Args:
        characters: the allowed characters, in id order after the two special tokens.
    """

    pad_token = PAD_TOKEN
    eos_token = EOS_TOKEN
    pad_token_id = 0
    eos_token_id = 1

    def __init__(self, characters: str = DEFAULT_CHARACTERS) -> None:
        if len(set(characters)) != len(characters) or not characters:
            raise InvalidArgumentError("characters must be a non-empty string without repeats")
        self.characters = characters
        self._to_id = {c: i + 2 for i, c in enumerate(characters)}
        self._to_char = [PAD_TOKEN, EOS_TOKEN, *characters]

    @property
    def vocab_size(self) -> int:
        return len(self._to_char)

    def encode(self, text: str) -> torch.LongTensor:
        """``text`` -> ``LongTensor (1, len(text))``. Raises ``ValueError`` on an empty string or a
        character outside the vocabulary (the message lists the allowed characters)."""
        if not isinstance(text, str):
            raise InvalidArgumentTypeError(f"encode() takes a str, got {type(text).__name__}")
        if not text:
            raise InvalidArgumentError("empty prompt: give at least one chunk of text, e.g. 'cat '")
        bad = sorted({c for c in text if c not in self._to_id})
        if bad:
            raise InvalidArgumentError(
                f"prompt contains characters outside the vocabulary: {bad!r}; allowed characters "
                f"are {self.characters!r} (space, '.', lowercase a-z)"
            )
        ids = [self._to_id[c] for c in text]
        return torch.tensor([ids], dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int], skip_special_tokens: bool = True) -> str:
        """``ids`` of shape ``(L,)`` or ``(1, L)`` -> str. With ``skip_special_tokens`` (default)
        ``<pad>`` and ``<eos>`` are dropped; otherwise they are written out."""
        t = torch.as_tensor(ids)
        if t.dim() == 2 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 1:
            raise InvalidArgumentError(
                f"decode() takes ids of shape (L,) or (1, L), got {tuple(t.shape)}; "
                "use batch_decode() for (B, L)"
            )
        out = []
        for i in t.tolist():
            if not 0 <= i < self.vocab_size:
                raise InvalidArgumentError(
                    f"token id {i} is outside the vocabulary (size {self.vocab_size})"
                )
            if skip_special_tokens and i < 2:
                continue
            out.append(self._to_char[i])
        return "".join(out)

    def batch_decode(self, ids: torch.Tensor, skip_special_tokens: bool = True) -> list[str]:
        """``ids (B, L)`` -> list of B strings."""
        t = torch.as_tensor(ids)
        if t.dim() != 2:
            raise InvalidArgumentError(
                f"batch_decode() takes ids of shape (B, L), got {tuple(t.shape)}"
            )
        return [self.decode(row, skip_special_tokens=skip_special_tokens) for row in t]

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, characters={self.characters!r})"
