"""The synthetic grammar the demo CALM model is trained on, with its exact next-chunk law.

Every chunk is ``K = 4`` characters, so one CALM step emits exactly one grammar symbol::

    story    := sentence+ END
    sentence := SUBJECT VERB OBJECT          e.g. "cat saw rat."

* SUBJECT in ``cat  dog  owl  fox`` (``"cat "``, ...), VERB in ``saw fed met hid``,
  OBJECT in ``rat. elk. bee. ant.``; END is the chunk ``<eos> <pad> <pad> <pad>``.
* The law is a first-order Markov chain over chunks, each branch using the unequal weights
  ``BRANCH = (0.5, 0.3, 0.15, 0.05)`` in a rotated order:

  - first subject (and the subject after an END): subject i with ``BRANCH[i]``;
  - after subject i: verb j with ``BRANCH[(j - i) % 4]``;
  - after verb j: object k with ``BRANCH[(k - j) % 4]``;
  - after an object: END with ``P_END = 0.4``, else subject i with ``0.6 * BRANCH[i]``.

At T = 0.5 the branch (0.5, 0.3, 0.15, 0.05) becomes (0.685, 0.247, 0.062, 0.007): visible.
"""

from __future__ import annotations

import torch

from ...core.errors import InvalidArgumentError
from .tokenizer import CharTokenizer

BRANCH = (0.5, 0.3, 0.15, 0.05)
P_END = 0.4
SUBJECTS = ("cat ", "dog ", "owl ", "fox ")
VERBS = ("saw ", "fed ", "met ", "hid ")
OBJECTS = ("rat.", "elk.", "bee.", "ant.")
PATCH_SIZE = 4

# chunk index layout: 0-3 subjects, 4-7 verbs, 8-11 objects, 12 END
NUM_CHUNKS = 13
END = 12


def chunk_texts() -> list[str]:
    """The 13 chunk strings in index order (END written as ``"<eos>"``)."""
    return [*SUBJECTS, *VERBS, *OBJECTS, "<eos>"]


def chunk_ids(tokenizer: CharTokenizer) -> torch.LongTensor:
    """``LongTensor (13, 4)``: the token ids of every chunk (END = eos followed by pads)."""
    rows = [tokenizer.encode(w)[0] for w in (*SUBJECTS, *VERBS, *OBJECTS)]
    end = torch.full((PATCH_SIZE,), tokenizer.pad_token_id, dtype=torch.long)
    end[0] = tokenizer.eos_token_id
    return torch.stack([*rows, end])


def transition_matrix() -> torch.Tensor:
    """``(14, 13)`` float64: row c = law of the next chunk after chunk c; row 13 = stream start."""
    b = torch.tensor(BRANCH, dtype=torch.float64)
    m = torch.zeros(NUM_CHUNKS + 1, NUM_CHUNKS, dtype=torch.float64)
    idx = torch.arange(4)
    for i in range(4):
        m[i, 4 + idx] = b[(idx - i) % 4]  # subject i -> verbs
        m[4 + i, 8 + idx] = b[(idx - i) % 4]  # verb i -> objects
        m[8 + i, :4] = (1 - P_END) * b  # object -> next subject
        m[8 + i, END] = P_END  # object -> END
    m[END, :4] = b  # after END: a new story
    m[NUM_CHUNKS, :4] = b  # start of the stream
    return m


def sample_chunk_streams(
    num_streams: int, num_chunks: int, generator: torch.Generator | None = None
) -> torch.LongTensor:
    """``LongTensor (num_streams, num_chunks)`` of chunk indices: stories drawn from the grammar and
    concatenated (a stream starts at a story start; after END a new story begins)."""
    m = transition_matrix().float()
    out = torch.empty(num_streams, num_chunks, dtype=torch.long)
    state = torch.full((num_streams,), NUM_CHUNKS, dtype=torch.long)
    for t in range(num_chunks):  # loop over time only; all streams advance together
        state = torch.multinomial(m[state], 1, generator=generator).squeeze(1)
        out[:, t] = state
    return out


def next_chunk_law(tokenizer: CharTokenizer, prompt: str) -> dict[str, float]:
    """The grammar's exact law of the chunk after ``prompt`` (a whole number of chunks ending on a
    grammar chunk), as ``{chunk text: probability}`` with END written ``"<eos>"``."""
    if len(prompt) % PATCH_SIZE or not prompt:
        raise InvalidArgumentError(
            f"prompt length must be a positive multiple of {PATCH_SIZE}, got {prompt!r}"
        )
    last = prompt[-PATCH_SIZE:]
    texts = chunk_texts()
    if last not in texts[:END]:
        raise InvalidArgumentError(
            f"the prompt's last chunk {last!r} is not a grammar chunk ({texts[:END]})"
        )
    row = transition_matrix()[texts.index(last)]
    return {texts[j]: float(p) for j, p in enumerate(row) if p > 0}
