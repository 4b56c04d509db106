"""Answer keys: quantizers that map completion texts to the answer they give.

An answer (a number, a multiple-choice letter, a phrase) is reached by many different texts, so
temperature on answers needs a key per *answer*, not per text. Each quantizer here extracts the
answer from every text, normalises it to one canonical string, and maps that string to a stable
int64 id (:func:`answer_id`):

* ``final_number`` (:class:`FinalNumber`): the last number in the text; ``1,000``, ``1000`` and
  ``1000.0`` are one answer (``"1000"``);
* ``choice_letter`` (:class:`ChoiceLetter`): a multiple-choice letter (``"B"``);
* ``regex`` (:class:`RegexAnswer`, also written ``"regex:<pattern>"``): the last match of a
  pattern (its group ``answer``, else group 1, else the whole match);
* ``normalized_text`` (:class:`NormalizedText`): the whole text, case-folded, whitespace
  collapsed, surrounding punctuation stripped;
* ``answer`` (:class:`CallableAnswer`): a user function ``text -> answer`` (str, number or None).

A text with no extractable answer gets the key :data:`NO_ANSWER` (-1) of its own: it is an
outcome like any other (a model that mostly fails to answer stays visible), and
:attr:`AnswerQuantizer.no_answer` counts such texts.

Ids: the first 8 bytes of BLAKE2b of the canonical answer (UTF-8) with the top bit cleared, so
ids are in ``[0, 2**63)`` and never equal :data:`NO_ANSWER`. They do not depend on the process,
the run or the order of the texts. Two different answers share an id with probability about
``k**2 / 2**64`` for k distinct answers (1e-8 for a million answers); every quantizer keeps the
answers it has seen by id and raises :class:`QuantizerError` if that ever happens, since merging
two answers into one outcome would silently change the law.

Samples: a list of n texts (``str``, or objects with a ``text`` attribute) -> LongTensor ``(n,)``;
with ``batched=True`` a list of B lists -> ``(B, n)``. Extraction runs per text in Python (text
processing has no tensor form); the keys are built in one tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from hashlib import blake2b
from re import IGNORECASE, escape, findall
from re import compile as regex_compile
from re import error as RegexError
from string import punctuation
from typing import Any
from unicodedata import normalize as unicode_normalize

import torch

from .base import Quantizer, QuantizerError

#: The key of a text with no extractable answer.
NO_ANSWER = -1
_ID_MASK = (1 << 63) - 1


def answer_id(answer: str) -> int:
    """Stable int64 id of a canonical answer string, in ``[0, 2**63)`` (see the module doc)."""
    digest = blake2b(answer.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _ID_MASK


# -- normalisers (plain functions: text -> canonical answer or None) ------------------------------

_NUMBER = regex_compile(r"(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(\.\d+)?")
_MINUS = "-\u2212"  # ASCII hyphen-minus and the Unicode minus sign


def canonical_number(text: str) -> str | None:
    """A number written ``[-]digits[.digits]`` (thousands commas allowed) in canonical form:
    no commas, no trailing fractional zeros, no ``.0``, ``-0`` is ``0``; None if not a number."""
    try:
        value = Decimal(text.replace(",", "").replace("\u2212", "-"))
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == 0:
        return "0"
    out = format(value.normalize(), "f")
    return out


def final_number(text: str) -> str | None:
    """The last number in ``text``, canonical (:func:`canonical_number`), or None.

    A number is digits, optionally grouped by thousands commas (``1,000,000``), optionally with a
    decimal part (``3.25``). A minus sign right before it counts when it is not preceded by a digit
    (``x = -5`` and ``is-5`` give -5, ``3-5`` gives 5). Not recognised: exponents (``1e3`` gives 3),
    fractions (``1/2`` gives 2), leading-dot decimals (``.5`` gives 5).
    """
    last = None
    for last in _NUMBER.finditer(text):  # noqa: B007 - the last match is wanted
        pass
    if last is None:
        return None
    start = last.start()
    negative = (
        start > 0 and text[start - 1] in _MINUS and (start < 2 or not text[start - 2].isdigit())
    )
    return canonical_number(("-" if negative else "") + last.group(0))


def choice_letter(text: str, choices: str = "ABCD", ignore_case: bool = False) -> str | None:
    """The multiple-choice letter a text gives, in this order of preference: the last
    ``answer is X`` / ``answer: X``; else the last bracketed one (``(B)``, ``[B]``, ``B)``); else
    the last letter of ``choices`` standing alone (not part of a word or a number: ``B.``,
    ``**B**``), so an article ``A`` only counts when nothing better is there. ``ignore_case``:
    ``b`` counts as ``B`` (off by default, since ``a`` is a word)."""
    flags = IGNORECASE if ignore_case else 0
    letters = "".join(escape(c) for c in choices)
    marked = findall(rf"(?i:answer)\s*(?:is|:)?\s*[(\[*]*([{letters}])(?![A-Za-z0-9])", text, flags)
    boxed = findall(rf"(?:[(\[]([{letters}])[)\]]|(?<![A-Za-z0-9])([{letters}])\))", text, flags)
    alone = findall(rf"(?<![A-Za-z0-9])([{letters}])(?![A-Za-z0-9])", text, flags)
    found = marked or ["".join(b) for b in boxed] or alone
    return found[-1].upper() if found else None


_PUNCTUATION = punctuation + "\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026"


def normalized_text(text: str) -> str | None:
    """``text`` in NFKC form, case-folded, runs of whitespace made one space, leading and trailing
    whitespace and punctuation stripped; None when nothing is left."""
    folded = " ".join(unicode_normalize("NFKC", text).casefold().split())
    out = folded.strip(_PUNCTUATION + " ")
    return out or None


# -- quantizers ----------------------------------------------------------------------------------


def _text_of(sample: Any) -> str:
    if isinstance(sample, str):
        return sample
    text = getattr(sample, "text", None)
    if isinstance(text, str):
        return text
    raise QuantizerError(
        f"answer quantizers take texts (str, or objects with a str `text`), got "
        f"{type(sample).__name__}"
    )


class AnswerQuantizer(Quantizer):
    """Base of the answer quantizers: subclasses implement :meth:`extract` (text -> canonical
    answer or None). ``no_answer`` counts the texts without an answer, ``texts`` all texts keyed;
    :meth:`answer_of` maps a key back to its answer (None for :data:`NO_ANSWER`)."""

    def __init__(self, *, batched: bool = False) -> None:
        super().__init__(batched=batched)
        self.answers: dict[int, str] = {}
        self.no_answer = 0
        self.texts = 0

    def extract(self, text: str) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def key_of(self, text: str) -> int:
        """The key of one text (NO_ANSWER when it has no answer)."""
        answer = self.extract(text)
        if answer is None:
            return NO_ANSWER
        key = answer_id(answer)
        seen = self.answers.setdefault(key, answer)
        if seen != answer:
            raise QuantizerError(
                f"answers {seen!r} and {answer!r} share the 63-bit id {key}: a hash collision "
                "(probability ~k^2/2^64 for k distinct answers). Map answers to ids yourself "
                "with the 'answer' quantizer and a function returning distinct integers"
            )
        return key

    def answer_of(self, key: int) -> str | None:
        """The canonical answer of a key seen before (None for NO_ANSWER)."""
        if int(key) == NO_ANSWER:
            return None
        return self.answers[int(key)]

    def __call__(self, samples: Any, *, batched: bool | None = None) -> torch.Tensor:
        batched = self.batched if batched is None else batched
        if isinstance(samples, str) or not isinstance(samples, (list, tuple)):
            raise QuantizerError(
                f"the {self.name!r} quantizer takes a list of texts (batched: a list of lists), "
                f"got {type(samples).__name__}"
            )
        rows = samples if batched else [samples]
        keys = [[self.key_of(_text_of(s)) for s in row] for row in rows]
        widths = {len(r) for r in keys}
        if len(widths) > 1:
            raise QuantizerError(f"batched texts must have the same length per row, got {widths}")
        out = torch.tensor(keys, dtype=torch.long).reshape(len(rows), -1)
        self.texts += out.numel()
        self.no_answer += int((out == NO_ANSWER).sum())
        return out if batched else out[0]


class FinalNumber(AnswerQuantizer):
    """Key = the last number of the text (:func:`final_number`): ``1,000``, ``1000`` and
    ``1000.0`` are one answer."""

    name = "final_number"

    def extract(self, text: str) -> str | None:
        return final_number(text)


class ChoiceLetter(AnswerQuantizer):
    """Key = the multiple-choice letter (:func:`choice_letter`). Options: ``choices`` (the
    letters, default ``"ABCD"``), ``ignore_case``."""

    name = "choice_letter"

    def __init__(
        self, *, choices: str = "ABCD", ignore_case: bool = False, batched: bool = False
    ) -> None:
        super().__init__(batched=batched)
        if not isinstance(choices, str) or not choices or not choices.isalpha():
            raise QuantizerError(
                f"choices must be a string of letters, e.g. 'ABCD', got {choices!r}"
            )
        self.choices, self.ignore_case = choices.upper(), bool(ignore_case)

    def extract(self, text: str) -> str | None:
        return choice_letter(text, self.choices, self.ignore_case)


class NormalizedText(AnswerQuantizer):
    """Key = the whole text, normalised (:func:`normalized_text`): short free-form answers."""

    name = "normalized_text"

    def extract(self, text: str) -> str | None:
        return normalized_text(text)


NORMALIZE = {"strip": lambda s: s.strip() or None, "text": normalized_text, "number": None}


class RegexAnswer(AnswerQuantizer):
    """Key = the last match of ``pattern``: its named group ``answer``, else group 1, else the
    whole match, then normalised by ``normalize`` (``"strip"``: surrounding whitespace, the
    default; ``"text"``: :func:`normalized_text`; ``"number"``: :func:`final_number` of the
    match). Written as a quantizer name: ``"regex:<pattern>"`` (e.g. ``regex:Answer: (\\w+)``)."""

    name = "regex"
    name_option = "pattern"  # "regex:<pattern>" passes <pattern> as this option

    def __init__(
        self, pattern: str, *, normalize: str = "strip", flags: int = 0, batched: bool = False
    ) -> None:
        super().__init__(batched=batched)
        if normalize not in NORMALIZE:
            raise QuantizerError(f"normalize must be one of {sorted(NORMALIZE)}, got {normalize!r}")
        try:
            self.regex = regex_compile(pattern, flags)
        except (RegexError, TypeError) as exc:
            raise QuantizerError(f"regex pattern {pattern!r} does not compile: {exc}") from None
        self.pattern, self.normalize = pattern, normalize

    def extract(self, text: str) -> str | None:
        last = None
        for last in self.regex.finditer(text):  # noqa: B007 - the last match is wanted
            pass
        if last is None:
            return None
        if "answer" in self.regex.groupindex:
            found = last.group("answer")
        else:
            found = last.group(1) if self.regex.groups else last.group(0)
        if found is None:
            return None
        if self.normalize == "number":
            return final_number(found)
        return NORMALIZE[self.normalize](found)

    def _repr_options(self) -> str:
        return f"pattern={self.pattern!r}, normalize={self.normalize!r}"


class CallableAnswer(AnswerQuantizer):
    """Key = ``fn(text)``: a user function returning the answer as a str (normalised with
    ``str.strip``), a number (canonical, so 1000 and 1000.0 are one answer), or None (no
    answer). ``fn`` must be deterministic."""

    name = "answer"

    def __init__(self, fn: Callable[[str], Any], *, batched: bool = False) -> None:
        super().__init__(batched=batched)
        if not callable(fn):
            raise QuantizerError(f"fn must be a callable text -> answer, got {fn!r}")
        self.fn = fn

    def extract(self, text: str) -> str | None:
        value = self.fn(text)
        if value is None:
            return None
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, (int, float, Decimal)):
            return canonical_number(repr(value) if isinstance(value, float) else str(value))
        if isinstance(value, str):
            return value.strip() or None
        raise QuantizerError(
            f"the answer function returned {type(value).__name__}; return a str, a number or None"
        )


ANSWER_QUANTIZERS = (FinalNumber, ChoiceLetter, NormalizedText, RegexAnswer, CallableAnswer)
