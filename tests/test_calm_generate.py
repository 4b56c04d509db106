"""generate(): chunk-by-chunk CALM decoding, B prompts at once, per-sequence EOS, bad inputs."""

from __future__ import annotations

import pytest
import torch

from implicit_temperature.adapters.calm import CALMGenerateOutput, generate
from implicit_temperature.demos.calm import grammar, load_demo_model
from implicit_temperature.demos.calm.demo import add_arguments, run


@pytest.fixture(scope="module")
def demo():
    return load_demo_model()


def chunks_of(row: torch.Tensor, k: int = 4) -> torch.Tensor:
    return row.view(-1, k)


@pytest.mark.parametrize("method,temperature", [("batch", 0.5), ("exact", 0.5), ("batch", 1.0)])
def test_sequences_end_at_different_steps(demo, method, temperature):
    model, tok = demo
    # after an object the story ends with P = 0.4 (0.55 at T = 0.5), else another sentence (3
    # chunks) follows; with 12 rows all end at the same step with probability < 1e-3 at T = 0.5
    ids = torch.cat([tok.encode("cat saw rat.")] * 6 + [tok.encode("fox met bee.")] * 6)
    out = generate(
        model,
        ids,
        temperature=temperature,
        method=method,
        max_new_tokens=40,
        eos_token_id=tok.eos_token_id,
        generator=2,
        return_dict_in_generate=True,
    )
    assert isinstance(out, CALMGenerateOutput)
    seq = out.sequences
    assert seq.shape[0] == 12 and seq.shape[1] <= 12 + 40 and seq.dtype == torch.long
    assert torch.equal(seq[:, :12], ids)
    new = seq[:, 12:]
    is_eos = new == tok.eos_token_id
    ended = is_eos.any(1)
    never = torch.full_like(ended, new.shape[1], dtype=torch.long)
    first = torch.where(ended, is_eos.int().argmax(1), never)
    # everything after the first EOS is padding, and padding never precedes it
    pos = torch.arange(new.shape[1])[None, :]
    assert (new[pos > first[:, None]] == tok.pad_token_id).all()
    assert (new[pos < first[:, None]] > 1).all()
    # sequences ended at different steps, and decoding went on for the unfinished ones
    assert ended.sum() >= 2
    assert len(set(first[ended].tolist())) >= 2
    # each generated chunk (up to EOS) is a grammar chunk
    table = grammar.chunk_ids(tok)
    for row, f in zip(new, first.tolist(), strict=True):
        body = row[: (f // 4 + 1) * 4 if f < new.shape[1] else (new.shape[1] // 4) * 4]
        c = chunks_of(body)
        assert (c[:, None, :] == table[None]).all(-1).any(-1).all(), tok.decode(row)
    # decoding stopped when all had ended, else ran to max_new_tokens
    assert seq.shape[1] == 12 + 40 or ended.all()


def test_same_seed_same_output_and_truncation(demo):
    model, tok = demo
    ids = torch.cat([tok.encode("cat "), tok.encode("dog ")])
    a = generate(model, ids, temperature=0.5, max_new_tokens=10, generator=5)
    b = generate(
        model, ids, temperature=0.5, max_new_tokens=10, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(a, b) and a.shape == (2, 4 + 10)
    # without eos_token_id decoding never stops early
    c = generate(model, ids[:1], temperature=1.0, max_new_tokens=48, generator=1)
    assert c.shape == (1, 52)


def test_generate_rejects_bad_inputs(demo):
    model, tok = demo
    ids = tok.encode("cat ")
    kw = dict(temperature=0.5, max_new_tokens=8)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        generate(model, ids, temperature=0.5, max_new_tokens=0)
    with pytest.raises(ValueError, match="not a multiple of the model's patch_size K=4"):
        generate(model, tok.encode("cat sa"), **kw)
    with pytest.raises(ValueError, match=r"is empty \(L = 0\)"):
        generate(model, ids[:, :0], **kw)
    with pytest.raises(TypeError, match="integer token ids"):
        generate(model, ids.float(), **kw)
    with pytest.raises(ValueError, match=r"shape \(B, L\)"):
        generate(model, ids[0], **kw)
    with pytest.raises(ValueError, match="outside"):
        generate(model, ids + 100, **kw)
    with pytest.raises(ValueError, match="use method='batch'"):
        generate(model, ids, temperature=2.0, max_new_tokens=8, method="exact")
    with pytest.raises(ValueError, match="method must be one of"):
        generate(model, ids, temperature=0.5, max_new_tokens=8, method="greedy")
    # temperature=0 is mode decoding (issue 18); negative and NaN stay errors
    with pytest.raises(ValueError, match="temperature must be"):
        generate(model, ids, temperature=-0.5, max_new_tokens=8)
    with pytest.raises(ValueError, match="temperature must be"):
        generate(model, ids, temperature=float("nan"), max_new_tokens=8)
    with pytest.raises(ValueError, match="num_samples must be >= 1"):
        generate(model, ids, num_samples=0, **kw)
    with pytest.raises(TypeError, match="not a CALM model"):
        generate(torch.nn.Linear(2, 2), ids, **kw)


def test_temperature_above_one_with_batch_method(demo):
    model, tok = demo
    out = generate(
        model,
        tok.encode("cat ").expand(3, -1),
        temperature=2.0,
        method="batch",
        max_new_tokens=4,
        generator=0,
        return_dict_in_generate=True,
    )
    assert out.sequences.shape == (3, 8)
    assert len(out.cascade_levels) == 1 and (out.cascade_levels[0] == 2.0**-1).all()


def test_demo_runs(capsys):
    """The demo with small sizes (its defaults only differ in sample counts), and its errors."""
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = parser.parse_args([])
    assert (defaults.temperature, defaults.method, defaults.seed) == (0.5, "auto", 0)
    args = parser.parse_args(
        ["--max-new-tokens", "8", "--reference-draws", "5000", "--table-samples", "300"]
    )
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "T = 0.5" in text and "total variation" in text and "P^(1/T)/Z" in text
    assert "'saw '" in text
    # a prompt short of a whole chunk is padded (pad_to_chunks, as the reference does)
    small = ["--max-new-tokens", "4", "--reference-draws", "2000", "--table-samples", "100"]
    assert run(parser.parse_args(["--prompt", "dog sa", *small])) == 0
    text = capsys.readouterr().out
    assert "padded with 2 <pad> after it" in text and "prompt 'dog sa'" in text
    for argv, message in (
        (["--prompt", "Cat!"], "allowed characters"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be >= 1"),
        (["--method", "exact", "--temperature", "2"], "use --method batch"),
    ):
        assert run(parser.parse_args(argv)) == 2
        assert message in capsys.readouterr().err
