"""The task the shipped answers model is trained on: one-digit additions with a known answer law.

A question is one 4-character chunk ``"a+b="`` (a, b in 0..9). The model answers with one chunk
and then END. The answer law is designed, so every number in the demo can be checked:

* the answer value is ``a + b + offset`` with ``offset`` drawn from :data:`OFFSETS`: right 55% of
  the time; off by -1 (15%), +1 (12%), +10 (10%) or +2 (8%);
* each value is written in one of two surface forms with equal probability, ``f"{v:>3}."``
  (``" 7."``) or ``f"is{v:>2}"`` (``"is 7"``): the same answer reached by two different texts,
  so temperature on texts and temperature on answers differ.

At T = 0.5 the answer law becomes 0.864 right; at T = 0.25, 0.991; majority vote (T -> 0) is
always right, because the right answer is the most likely one.
"""

from __future__ import annotations

import torch

from ..calm.tokenizer import CharTokenizer

#: offset of the answer from the right sum -> probability (the model's designed answer law)
OFFSETS: dict[int, float] = {0: 0.55, -1: 0.15, 1: 0.12, 10: 0.10, 2: 0.08}
#: the characters of the answers model's tokenizer (after <pad> and <eos>)
CHARACTERS = " .-0123456789+=is"
PATCH_SIZE = 4
OPERANDS = range(10)


def tokenizer() -> CharTokenizer:
    """The character tokenizer of the answers model."""
    return CharTokenizer(CHARACTERS)


def question(a: int, b: int) -> str:
    """The prompt for ``a + b`` (one chunk, e.g. ``"3+4="``)."""
    return f"{a}+{b}="


def questions() -> list[tuple[str, int]]:
    """Every question with its right answer, in a fixed order (``("3+4=", 7)``, ...)."""
    return [(question(a, b), a + b) for a in OPERANDS for b in OPERANDS]


def surface_forms(value: int) -> tuple[str, str]:
    """The two texts (4 characters each) that answer ``value``."""
    return f"{value:>3}.", f"is{value:>2}"


def answer_law(right: int) -> dict[int, float]:
    """The designed law of the answer value to a question whose right answer is ``right``."""
    return {right + off: p for off, p in OFFSETS.items()}


def chunk_table(tok: CharTokenizer) -> tuple[list[str], torch.Tensor]:
    """Every chunk the model uses (questions, answer texts, then END) and their token ids
    ``LongTensor (C, 4)``; END is ``<eos>`` followed by pads."""
    texts = [q for q, _ in questions()]
    values = sorted({r + off for _, r in questions() for off in OFFSETS})
    texts += [f for v in values for f in surface_forms(v)]
    rows = [tok.encode(t)[0] for t in texts]
    end = torch.full((PATCH_SIZE,), tok.pad_token_id, dtype=torch.long)
    end[0] = tok.eos_token_id
    return [*texts, "<eos>"], torch.stack([*rows, end])


def sample_sequences(
    n: int, tok: CharTokenizer, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``LongTensor (n, 12)``: n training sequences ``question, answer text, END`` as token ids."""
    texts, table = chunk_table(tok)
    index = {t: i for i, t in enumerate(texts)}
    qs = questions()
    offs = torch.tensor(list(OFFSETS), dtype=torch.long)
    probs = torch.tensor(list(OFFSETS.values()), dtype=torch.float64)
    q = torch.randint(len(qs), (n,), generator=generator)
    off = offs[torch.multinomial(probs, n, replacement=True, generator=generator)]
    form = torch.randint(2, (n,), generator=generator)
    rows = []
    for qi, o, f in zip(q.tolist(), off.tolist(), form.tolist(), strict=True):
        prompt, right = qs[qi]
        rows.append([index[prompt], index[surface_forms(right + o)[f]], len(texts) - 1])
    return table[torch.tensor(rows)].reshape(n, -1)
