"""CALM ``generate`` with transformers' keywords: left padding (the law is unchanged), mode
decoding, num_return_sequences, stop strings and finish reasons, per-prompt generators, the
``model.generate``-style wrapper and mixin."""

from __future__ import annotations

import pytest
import torch
from conftest import chi_square_pvalue

from implicit_temperature.adapters.calm import (
    CALMGenerationMixin,
    generate,
    left_pad,
    with_temperature_generate,
)
from implicit_temperature.adapters.calm.adapter import context_hidden_states, sample_chunks
from implicit_temperature.demos.calm import CALM, load_demo_model


@pytest.fixture(scope="module")
def demo():
    return load_demo_model()


def first_chunk_law(model, tok, text: str, n: int = 100_000):
    """Reference first-chunk frequencies at T = 1 from n draws on the unpadded prompt."""
    ref = sample_chunks(model, context_hidden_states(model, tok.encode(text)), n, generator=99)[0]
    words = tok.batch_decode(ref)
    vocab = sorted(set(words))
    index = {w: i for i, w in enumerate(vocab)}
    counts = torch.bincount(torch.tensor([index[w] for w in words]), minlength=len(vocab))
    return index, counts.double() / n


def test_left_padding_keeps_the_next_chunk_law(demo):
    model, tok = demo
    ids, mask = left_pad([tok.encode("cat "), tok.encode("fox met bee.")], tok.pad_token_id)
    assert mask[0].tolist() == [0] * 8 + [1] * 4
    out = generate(
        model, ids, attention_mask=mask, max_new_tokens=4, num_return_sequences=3000, generator=5
    )
    padded = tok.batch_decode(out[:3000, -4:])  # prompt 0's rows: "cat " behind 8 pads
    index, p = first_chunk_law(model, tok, "cat ")
    got = torch.tensor([index[w] for w in padded])  # KeyError: a chunk never seen unpadded
    assert chi_square_pvalue(got, p) > 1e-3
    # and with one generator per prompt, the padded prompt's output is the unpadded one's
    alone = generate(model, tok.encode("cat "), max_new_tokens=12, generator=[7])
    both = generate(model, ids, attention_mask=mask, max_new_tokens=12, generator=[7, 8])
    assert torch.equal(both[0, -12:], alone[0, -12:])


def test_mode_decoding_is_the_most_frequent_chunk(demo):
    model, tok = demo
    index, p = first_chunk_law(model, tok, "cat ")
    mode = max(index, key=lambda w: p[index[w]])
    ids = tok.encode("cat ")
    picks = [
        tok.decode(generate(model, ids, do_sample=False, max_new_tokens=4, generator=s)[0, 4:])
        for s in range(10)
    ]
    assert p.max() > 1.5 * p.sort().values[-2]  # a clear mode, so N = 200 finds it w.h.p.
    assert picks.count(mode) >= 9, (mode, picks)
    t0 = generate(model, ids, temperature=0, max_new_tokens=8, generator=3)
    assert torch.equal(t0, generate(model, ids, do_sample=False, max_new_tokens=8, generator=3))


def test_num_return_sequences_and_defaults(demo):
    model, tok = demo
    ids = torch.cat([tok.encode("cat "), tok.encode("dog ")])
    out = generate(model, ids, num_return_sequences=3, generator=0)  # T = 1, 32 new tokens
    assert out.shape == (6, 4 + 32)
    assert all(tok.decode(r[:4]) == "cat " for r in out[:3])
    assert all(tok.decode(r[:4]) == "dog " for r in out[3:])


def test_stop_strings_and_finish_reasons(demo):
    model, tok = demo
    ids = tok.encode("cat ").expand(16, -1)
    out = generate(
        model,
        ids,
        max_new_tokens=40,
        eos_token_id=tok.eos_token_id,
        stop_strings=["saw"],
        tokenizer=tok,
        generator=1,
        return_dict_in_generate=True,
    )
    assert len(out.finish_reasons) == 16
    for row, reason in zip(out.sequences, out.finish_reasons, strict=True):
        text = tok.decode(row[4:])
        if reason == "stop":
            assert "saw" in text
        elif reason == "eos":
            assert "saw" not in text and tok.eos_token_id in row.tolist()
        else:
            assert reason == "length" and len(text) == 40
    assert {"stop", "eos"} <= set(out.finish_reasons)
    short = generate(model, ids[:2], max_new_tokens=4, return_dict_in_generate=True, generator=0)
    assert short.finish_reasons == ["length", "length"]
    with pytest.raises(ValueError, match="tokenizer"):
        generate(model, ids, stop_strings=["."])


def test_attention_mask_must_be_left_padding_in_whole_chunks(demo):
    model, tok = demo
    ids, mask = left_pad([tok.encode("cat "), tok.encode("fox met ")], tok.pad_token_id)
    with pytest.raises(ValueError, match="not left padding"):
        generate(model, ids, attention_mask=mask.flip(1))
    half = mask.clone()
    half[0, 2:4] = 1
    with pytest.raises(ValueError, match="part of a chunk"):
        generate(model, ids, attention_mask=half)
    with pytest.raises(ValueError, match="one generator"):
        generate(model, ids, attention_mask=mask, generator=[1, 2, 3])


def test_wrapper_and_mixin(demo):
    model, tok = demo
    wrapped = with_temperature_generate(model)
    ids = tok.encode("cat ")
    a = wrapped.generate(ids, temperature=0.5, max_new_tokens=8, generator=4)
    assert torch.equal(a, generate(model, ids, temperature=0.5, max_new_tokens=8, generator=4))
    assert wrapped.patch_size == model.patch_size  # everything else is the model's

    class MyCALM(CALMGenerationMixin, CALM):
        pass

    mine = MyCALM(model.config)
    mine.load_state_dict(model.state_dict())
    b = mine.generate(ids, temperature=0.5, max_new_tokens=8, generator=4)
    assert torch.equal(a, b)
