"""Answer keys: the normalisers against plain reference implementations (hypothesis), stable
int64 ids, the no-answer key, registry names (``regex:<pattern>``) and errors."""

from __future__ import annotations

import string

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from implicit_temperature.quantizers import (
    NO_ANSWER,
    CallableAnswer,
    FinalNumber,
    QuantizerError,
    answer_id,
    resolve_quantizer,
)
from implicit_temperature.quantizers import answers as A

# -- plain references ------------------------------------------------------------------------


def ref_canonical(int_part: int, frac: str, negative: bool) -> str:
    """Canonical form of [-]int_part.frac by string operations only (no Decimal)."""
    frac = frac.rstrip("0")
    body = str(int_part) + ("." + frac if frac else "")
    if body == "0":
        return "0"
    return ("-" if negative else "") + body


def with_commas(n: int) -> str:
    return f"{n:,}"


NO_DIGITS = st.text(
    alphabet=st.sampled_from(string.ascii_letters + " ,:;!?()\n'\""), max_size=20
).filter(lambda s: not s.endswith(("-", ".")))


@settings(max_examples=120, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=10**12),
    frac=st.text(alphabet="0123456789", max_size=4),
    negative=st.booleans(),
    commas=st.booleans(),
    prefix=NO_DIGITS,
    suffix=NO_DIGITS.filter(lambda s: not s.startswith((",", "."))),
)
def test_final_number_matches_the_reference(n, frac, negative, commas, prefix, suffix):
    number = (with_commas(n) if commas else str(n)) + ("." + frac if frac else "")
    sign = "-" if negative else ""
    sep = " " if prefix and not prefix.endswith(" ") else ""
    text = f"{prefix}{sep}{sign}{number}{suffix}"
    assert A.final_number(text) == ref_canonical(n, frac, negative)


@settings(max_examples=80, deadline=None)
@given(
    numbers=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=5),
    words=st.lists(st.sampled_from(["so", "then", "is", "answer", "="]), min_size=5, max_size=5),
)
def test_final_number_is_the_last_number(numbers, words):
    text = " ".join(f"{w} {x}" for w, x in zip(words, numbers, strict=False))
    assert A.final_number(text) == str(numbers[-1])


def test_final_number_forms_of_one_answer_are_one_key():
    q = FinalNumber()
    forms = ["1,000", "1000", "1000.0", "The answer is 1,000.", "= 1000.00", "**1000**"]
    keys = q(forms)
    assert keys.dtype == torch.int64 and torch.unique(keys).numel() == 1
    assert q(["-0", "0.0", "0"]).unique().numel() == 1
    assert A.final_number("3-5") == "5" and A.final_number("x = -5") == "-5"
    assert A.final_number("no number here") is None


def ref_choice(text: str, choices: str) -> str | None:
    """The last token that is exactly one choice letter (tokens split on non-alphanumerics)."""
    token, last = "", None
    for c in text + " ":
        if c.isascii() and c.isalnum():
            token += c
        else:
            if token in choices and len(token) == 1:
                last = token
            token = ""
    return last


@settings(max_examples=120, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ABCDEFxyz0 .,*!")), max_size=30))
def test_choice_letter_matches_the_reference_without_markers(text):
    # no "answer" marker and no brackets: the last standalone letter
    assert A.choice_letter(text, "ABCD") == ref_choice(text, "ABCD")


def test_choice_letter_prefers_markers_and_brackets():
    assert A.choice_letter("The answer is C. A cat sat.") == "C"
    assert A.choice_letter("I pick (B). A fine choice") == "B"
    assert A.choice_letter("b", ignore_case=True) == "B"
    assert A.choice_letter("Apple") is None


def ref_normalized(text: str) -> str | None:
    words = text.lower().split()
    joined = " ".join(words)
    while joined and (joined[0] in string.punctuation or joined[0] == " "):
        joined = joined[1:]
    while joined and (joined[-1] in string.punctuation or joined[-1] == " "):
        joined = joined[:-1]
    return joined or None


@settings(max_examples=120, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + " \t\n.,!?'-", max_size=40))
def test_normalized_text_matches_the_reference(text):
    assert A.normalized_text(text) == ref_normalized(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_answer_ids_are_stable_non_negative_int64(answer):
    key = answer_id(answer)
    assert 0 <= key < 2**63 and key == answer_id(answer) and key != NO_ANSWER


def test_no_answer_key_and_counter():
    q = resolve_quantizer("final_number")
    keys = q(["42", "no idea", "forty-two", "42.0"])
    assert keys.tolist()[1:3] == [NO_ANSWER, NO_ANSWER] and keys[0] == keys[3]
    assert q.no_answer == 2 and q.texts == 4
    assert q.answer_of(int(keys[0])) == "42" and q.answer_of(NO_ANSWER) is None


def test_regex_name_form_and_options():
    q = resolve_quantizer(r"regex:Answer: (\w+)")
    assert q.extract("Answer: foo ... Answer: bar") == "bar"
    q2 = resolve_quantizer("regex", pattern=r"(?P<answer>\d[\d,]*)", normalize="number")
    assert q2.extract("about 1,000 or 2,000") == "2000"
    with pytest.raises(QuantizerError, match="does not compile"):
        resolve_quantizer("regex:(")
    with pytest.raises(QuantizerError, match="takes no argument"):
        resolve_quantizer("final_number:x")


def test_callable_answers_and_batched_texts():
    q = CallableAnswer(lambda t: len(t) if t else None)
    assert q(["ab", "cd", ""]).tolist()[2] == NO_ANSWER
    assert q.extract("abc") == "3"
    assert CallableAnswer(lambda t: 1000.0).extract("x") == "1000"
    keys = FinalNumber()([["1", "2"], ["2", "x"]], batched=True)
    assert keys.shape == (2, 2) and keys[0, 1] == keys[1, 0]
    with pytest.raises(QuantizerError, match="list of texts"):
        FinalNumber()("42")


def test_a_hash_collision_is_an_error(monkeypatch):
    monkeypatch.setattr(A, "answer_id", lambda answer: 7)
    q = FinalNumber()
    q(["1"])
    with pytest.raises(QuantizerError, match="collision"):
        q(["2"])
