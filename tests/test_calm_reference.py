"""The CALM adapter on what real checkpoints need: int seeds, both transformers cache spellings,
no deprecation warnings, bounded decoder memory, the reference decoder contract, a safe global
RNG for heads without ``generator=``, throwaway backbone calls without a cache, prompt padding."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import threading
import time
import warnings
import weakref
from typing import Any, NamedTuple

import pytest
import torch
from conftest import tiny_calm_config as tiny_config
from torch import nn

import implicit_temperature as it
from implicit_temperature.adapters.calm import CALMAdapter, generate, pad_to_chunks
from implicit_temperature.adapters.calm.adapter import (
    DEFAULT_DECODE_BYTES,
    decode_latents,
    default_decode_chunk_size,
    sample_chunks,
)
from implicit_temperature.adapters.calm.backbone import cache_keyword, initial_cache, output_cache
from implicit_temperature.adapters.calm.rng import seeded_global_rng
from implicit_temperature.demos.calm import CALM, load_demo_model

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def demo():
    return load_demo_model()


class _ReferenceHead(nn.Module):
    """Head without ``generator``: noise from torch's global RNG, drawn in two pieces with a
    thread switch in between (so unsynchronised concurrent draws would interleave)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def sample(self, hidden_states: torch.Tensor) -> torch.Tensor:
        first = self.head.sample(hidden_states)
        time.sleep(0.001)
        return first + 0.0 * self.head.sample(hidden_states) + torch.rand(()) * 1e-3


def reference_head_model() -> CALM:
    torch.manual_seed(0)
    model = CALM(tiny_config()).eval()
    model.generative_head = _ReferenceHead(model.generative_head)
    return model


# -- 1. int seeds at every entry point -----------------------------------------------------------
def test_int_seeds_are_accepted_everywhere(demo):
    model, tok = demo
    ctx = torch.cat([tok.encode("cat "), tok.encode("dog ")])
    a = CALMAdapter(model, context=ctx)
    x = a.draw(64, generator=7)
    assert torch.equal(x, a.draw(64, generator=7))
    assert torch.equal(x, a.draw(64, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(x, a.draw(64, generator=8))
    assert torch.equal(sample_chunks(model, a.hidden_states, 64, generator=7), x)
    ref = reference_head_model()
    b = CALMAdapter(ref, context=torch.zeros(2, 8, dtype=torch.long))
    assert torch.equal(b.draw(32, generator=3), b.draw(32, generator=3))
    sampler = it.TemperatureSampler(model, context=ctx)
    r1 = sampler.sample(0.5, method="exact", num_outputs=3, generator=5)
    r2 = sampler.sample(0.5, method="exact", num_outputs=3, generator=5)
    assert torch.equal(r1.samples, r2.samples)
    with pytest.raises(TypeError, match="int seed"):
        a.draw(4, generator="7")


# -- 3. transformers 4.x and 5.x cache spellings -------------------------------------------------
class _PastOutput(NamedTuple):
    last_hidden_state: torch.Tensor
    past_key_values: Any


@dataclasses.dataclass
class _CacheOutput:
    last_hidden_state: torch.Tensor
    cache: Any = None

    def __getitem__(self, i: int) -> torch.Tensor:
        assert i == 0
        return self.last_hidden_state


class _Renamed(nn.Module):
    """Wraps the installed LlamaModel behind one cache spelling (keyword and output field)."""

    def __init__(self, llama: nn.Module) -> None:
        super().__init__()
        self.llama = llama
        self.embed_tokens = llama.embed_tokens
        self.inner = cache_keyword(llama)
        self.seen: list[str] = []

    def _run(self, inputs_embeds, cache, use_cache):
        if cache is None and use_cache:
            cache = initial_cache(self.llama)  # transformers 4.x: no deprecation notice
        kw = {} if cache is None else {self.inner: cache}
        out = self.llama(inputs_embeds=inputs_embeds, use_cache=use_cache, **kw)
        return out[0], output_cache(out, self.inner)


class _OldStyle(_Renamed):
    def forward(self, inputs_embeds=None, past_key_values=None, use_cache=False):
        self.seen.append("past_key_values" if past_key_values is not None else "none")
        hidden, cache = self._run(inputs_embeds, past_key_values, use_cache)
        return _PastOutput(hidden, cache)


class _NewStyle(_Renamed):
    def forward(self, inputs_embeds=None, cache=None, use_cache=False):
        self.seen.append("cache" if cache is not None else "none")
        hidden, new = self._run(inputs_embeds, cache, use_cache)
        return _CacheOutput(hidden, new)


def test_cache_keyword_is_read_from_the_signature():
    class Kw(nn.Module):
        def forward(self, inputs_embeds=None, **kwargs):
            return inputs_embeds

    llama = CALM(tiny_config()).transformer
    assert cache_keyword(_OldStyle(llama)) == "past_key_values"
    assert cache_keyword(_NewStyle(llama)) == "cache"
    assert cache_keyword(Kw()) == "past_key_values"
    # the installed LlamaModel: whichever spelling its forward declares (5.24: cache)
    assert cache_keyword(llama) in inspect.signature(llama.forward).parameters
    h = torch.zeros(1, 1, 2)
    assert output_cache(_PastOutput(h, "kv"), "past_key_values") == "kv"
    assert output_cache(_CacheOutput(h, "kv"), "past_key_values") == "kv"
    assert output_cache(_CacheOutput(h, "kv"), "cache") == "kv"
    assert output_cache((h,), "cache") is None


@pytest.mark.parametrize("style", [_OldStyle, _NewStyle])
def test_generate_drives_both_cache_spellings(demo, style):
    model, tok = demo
    ids = torch.cat([tok.encode("cat "), tok.encode("owl saw ")[:, :4]])
    expected = generate(model, ids, temperature=0.5, max_new_tokens=12, generator=3)
    original = model.transformer
    wrapped = style(original)
    try:
        model.transformer = wrapped
        got = generate(model, ids, temperature=0.5, max_new_tokens=12, generator=3)
    finally:
        model.transformer = original
    assert torch.equal(got, expected)
    name = "past_key_values" if style is _OldStyle else "cache"
    assert wrapped.seen[1:] == [name, name]  # steps 2 and 3 pass the cache back


def _transformers_records() -> tuple[logging.Handler, list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    once = getattr(transformers.utils.logging, "warning_once", None)
    if hasattr(once, "cache_clear"):
        once.cache_clear()  # warning_once remembers messages already given
    return Keep(level=logging.WARNING), records


def test_no_deprecation_warning_from_the_installed_transformers(demo):
    """Warnings are errors, and transformers' own logger must stay silent (4.x logs its cache
    deprecation notice instead of warning)."""
    model, tok = demo
    handler, records = _transformers_records()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ids = tok.encode("cat saw rat.dog ").expand(2, -1)
            for method in ("batch", "exact"):
                generate(
                    model,
                    ids,
                    temperature=0.5,
                    method=method,
                    max_new_tokens=8,
                    eos_token_id=tok.eos_token_id,
                    generator=1,
                )
            CALMAdapter(model, context=ids).draw(8, generator=0)
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == []


# -- 7. throwaway backbone calls build no cache --------------------------------------------------
def test_head_only_calls_pass_use_cache_false(demo, monkeypatch):
    model, tok = demo
    calls: list[dict] = []
    original = model.transformer.forward

    @functools.wraps(original)  # keeps the signature (and so the cache keyword)
    def spy(*args, **kwargs):
        calls.append({k: v for k, v in kwargs.items() if k != "inputs_embeds"})
        return original(*args, **kwargs)

    monkeypatch.setattr(model.transformer, "forward", spy)
    CALMAdapter(model, context=tok.encode("cat ")).draw(4, generator=0)
    assert calls == [{"use_cache": False}]
    calls.clear()
    generate(model, tok.encode("cat "), temperature=1.0, max_new_tokens=8, generator=0)
    assert [c["use_cache"] for c in calls] == [True, True]


# -- 4. decoder memory: slices of bounded size ---------------------------------------------------
class _Spy(nn.Module):
    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder
        self.shapes: list[tuple[int, ...]] = []
        self.logit_bytes: list[int] = []

    def forward(self, latent_states: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(latent_states.shape))
        out = self.decoder(latent_states)
        self.logit_bytes.append(out.numel() * out.element_size())
        return out


def test_decoding_in_slices_gives_the_same_chunks(demo):
    model, tok = demo
    spy = _Spy(model.ae_model.decoder)
    original = model.ae_model.decoder
    a = CALMAdapter(model, context=torch.cat([tok.encode("cat "), tok.encode("dog ")]))
    whole = a.draw(50, generator=4)
    try:
        model.ae_model.decoder = spy
        sliced = CALMAdapter(model, hidden_states=a.hidden_states, decode_chunk_size=7)
        got = sliced.draw(50, generator=4)
        out = generate(
            model,
            tok.encode("cat "),
            temperature=0.5,
            num_samples=20,
            max_new_tokens=4,
            generator=1,
            decode_chunk_size=6,
        )
    finally:
        model.ae_model.decoder = original
    assert torch.equal(got, whole)
    rows = [s[0] for s in spy.shapes]
    assert rows[:15] == [7] * 14 + [100 - 14 * 7]  # B * n = 100 latents, 7 at a time
    assert all(s[1:] == (1, model.config.latent_size) for s in spy.shapes)
    assert max(rows[15:]) == 6 and out.shape == (1, 8)
    sampler = it.TemperatureSampler(model, context=tok.encode("cat "), decode_chunk_size=5)
    assert sampler.adapter.decode_chunk_size == 5
    with pytest.raises(ValueError, match="decode_chunk_size must be an int >= 1"):
        CALMAdapter(model, context=tok.encode("cat "), decode_chunk_size=0)
    with pytest.raises(ValueError, match="decode_chunk_size must be an int >= 1"):
        generate(
            model, tok.encode("cat "), temperature=0.5, max_new_tokens=4, decode_chunk_size=2.5
        )


def test_default_slices_bound_the_logits_at_a_real_vocabulary():
    """V = 128 256 (the real checkpoints' vocabulary) with a tiny model: the default slice keeps
    each decoder call's logits under DEFAULT_DECODE_BYTES; unsliced they would be 3x that."""
    torch.manual_seed(0)
    model = CALM(tiny_config(vocab_size=128_256)).eval()
    spy = _Spy(model.ae_model.decoder)
    model.ae_model.decoder = spy
    a = CALMAdapter(model, context=torch.zeros(1, 4, dtype=torch.long))
    step = default_decode_chunk_size(model, a.hidden_states)
    assert step == DEFAULT_DECODE_BYTES // (4 * 128_256 * 4) == 130
    x = a.draw(400, generator=0)
    assert x.shape == (1, 400, 4) and int(x.max()) < 128_256
    assert [s[0] for s in spy.shapes] == [130, 130, 130, 10]
    assert max(spy.logit_bytes) <= DEFAULT_DECODE_BYTES
    assert 400 * 4 * 128_256 * 4 > 3 * DEFAULT_DECODE_BYTES


def test_each_slice_is_freed_before_the_next_is_decoded():
    """Only one slice's logits are alive at a time (else the peak is two slices, not one)."""
    torch.manual_seed(0)
    model = CALM(tiny_config()).eval()
    decoder = model.ae_model.decoder
    alive: list[bool] = []
    previous: list[weakref.ref] = []

    class Watch(nn.Module):
        def forward(self, latent_states):
            alive.extend(ref() is not None for ref in previous)
            out = decoder(latent_states)
            previous[:] = [weakref.ref(out)]
            return out

    model.ae_model.decoder = Watch()
    chunks = decode_latents(model, torch.randn(40, 4), decode_chunk_size=8)
    assert chunks.shape == (40, 4) and alive == [False] * 4


def test_unknown_vocabulary_size_is_learned_from_the_first_slice():
    torch.manual_seed(0)
    model = CALM(tiny_config()).eval()
    spy = _Spy(model.ae_model.decoder)
    model.ae_model.decoder = spy
    model.transformer.embed_tokens.num_embeddings = None  # V not declared
    latents = torch.randn(50, 4)
    chunks = decode_latents(model, latents)
    assert [s[0] for s in spy.shapes] == [1, 49] and chunks.shape == (50, 4)


# -- 5. the reference decoder contract -----------------------------------------------------------
def test_decoder_contract_is_the_reference_one(demo):
    model, _ = demo
    dec = model.ae_model.decoder
    z = torch.randn(3, 5, model.config.latent_size)
    assert dec(z).shape == (3, 5 * 4, model.config.vocab_size)  # (B, S * K, V)
    with pytest.raises(ValueError, match=r"latents \(B, S, D\)"):
        dec(z[0])  # 2-D latents refused

    class Unflattened(nn.Module):  # (B, S, K, V): wrong
        def forward(self, latent_states):
            return dec(latent_states).unflatten(1, (latent_states.shape[1], 4))

    a = CALMAdapter(model, context=torch.full((1, 4), 5))
    original = model.ae_model.decoder
    try:
        model.ae_model.decoder = Unflattened()
        with pytest.raises(ValueError, match=r"latents \(B, S, D\) -> logits \(B, S \* K, V\)"):
            a.draw(3, generator=0)
    finally:
        model.ae_model.decoder = original


# -- 6. global RNG for heads without generator= --------------------------------------------------
def test_reference_head_leaves_the_global_rng_as_it_was():
    model = reference_head_model()
    a = CALMAdapter(model, context=torch.zeros(2, 8, dtype=torch.long))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    x = a.draw(20, generator=9)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(0)
    assert torch.equal(a.draw(20, generator=9), x)  # independent of the global state


def test_reference_head_never_seeds_every_device(monkeypatch):
    """``torch.manual_seed`` (and ``torch.cuda.manual_seed_all``) reseed every device while
    fork_rng restores only the forked ones: they must not be used."""
    model = reference_head_model()
    a = CALMAdapter(model, context=torch.zeros(1, 4, dtype=torch.long))
    expected = a.draw(10, generator=1)

    def forbidden(*args, **kwargs):
        raise AssertionError("seeded every device")

    monkeypatch.setattr(torch, "manual_seed", forbidden)
    monkeypatch.setattr(torch.random, "manual_seed", forbidden)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", forbidden)
    assert torch.equal(a.draw(10, generator=1), expected)


def test_reference_head_draws_from_threads_equal_sequential_ones():
    """8 threads x 6 seeded draws each, from one adapter: every result equals the sequential
    draw with the same seed (the lock serialises the seeded sections). Without the lock the
    head's sleep between its two noise draws lets threads consume each other's stream."""
    model = reference_head_model()
    a = CALMAdapter(model, context=torch.zeros(2, 8, dtype=torch.long))
    seeds = list(range(48))
    sequential = {s: a.draw(16, generator=s) for s in seeds}
    threaded: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(mine: list[int]) -> None:
        try:
            barrier.wait()
            for s in mine:
                threaded[s] = a.draw(16, generator=s)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seeds[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(threaded) == len(seeds)
    assert all(torch.equal(threaded[s], sequential[s]) for s in seeds)


def test_seeded_global_rng_forks_and_seeds_one_cuda_device_only(monkeypatch):
    """The CUDA branch without a GPU: two stand-in device generators; a model on cuda:1 must
    fork device 1 alone and seed its generator alone (device 0 keeps its state)."""
    gens = (torch.Generator().manual_seed(100), torch.Generator().manual_seed(101))
    states = [g.get_state() for g in gens]
    forks: list[tuple] = []
    real_fork = torch.random.fork_rng

    def fake_fork(devices=None, enabled=True, device_type="cuda", **kw):
        forks.append((list(devices), device_type))
        return real_fork(devices=[], enabled=enabled)  # CPU state only, really

    monkeypatch.setattr(torch.cuda, "default_generators", gens, raising=False)
    monkeypatch.setattr(torch.random, "fork_rng", fake_fork)
    cpu = torch.get_rng_state()
    with seeded_global_rng(torch.device("cuda", 1), 5):
        seeded = gens[1].get_state()
    assert forks == [([1], "cuda")]
    assert torch.equal(gens[0].get_state(), states[0])  # device 0 untouched
    assert torch.equal(seeded, torch.Generator().manual_seed(5).get_state())
    assert torch.equal(torch.get_rng_state(), cpu)  # CPU state restored


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_seeded_global_rng_touches_only_the_model_device_on_cuda():
    states = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    cpu = torch.get_rng_state()
    with seeded_global_rng(torch.device("cuda", 0), 5):
        a = torch.rand(4, device="cuda:0")
    with seeded_global_rng(torch.device("cuda", 0), 5):
        b = torch.rand(4, device="cuda:0")
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), cpu)
    for i, state in enumerate(states):
        assert torch.equal(torch.cuda.get_rng_state(i), state)


# -- 8. prompt padding ---------------------------------------------------------------------------
def test_pad_to_chunks_exhaustively():
    bos, pad = 7, 0
    for k in range(1, 6):
        for length in range(1, 14):
            ids = torch.arange(length)[None].repeat(2, 1) + 10
            ids[:, 0] = bos
            for side in ("right", "left"):
                out = pad_to_chunks(ids, k, pad, side=side)
                assert out.dtype == torch.long and out.shape[0] == 2
                assert out.shape[1] % k == 0 and length <= out.shape[1] < length + k
                extra = out.shape[1] - length
                if side == "right":  # the reference: prompt first (BOS kept), pads after
                    assert torch.equal(out[:, :length], ids) and out[0, 0] == bos
                    assert (out[:, length:] == pad).all()
                else:
                    assert torch.equal(out[:, extra:], ids) and (out[:, :extra] == pad).all()
    assert pad_to_chunks(torch.tensor([1, 2, 3]), 4, 0).tolist() == [[1, 2, 3, 0]]
    with pytest.raises(ValueError, match="empty"):
        pad_to_chunks(torch.zeros(1, 0, dtype=torch.long), 4, 0)
    with pytest.raises(ValueError, match="patch_size must be an int >= 1"):
        pad_to_chunks(torch.ones(1, 3, dtype=torch.long), 0, 0)
    with pytest.raises(ValueError, match="pad_token_id"):
        pad_to_chunks(torch.ones(1, 3, dtype=torch.long), 4, None)
    with pytest.raises(ValueError, match="side must be"):
        pad_to_chunks(torch.ones(1, 3, dtype=torch.long), 4, 0, side="middle")
    with pytest.raises(TypeError, match="integer token ids"):
        pad_to_chunks(torch.ones(1, 3), 4, 0)


def test_padded_prompt_generates(demo):
    model, tok = demo
    ids = pad_to_chunks(tok.encode("cat saw rat.dog"), model.patch_size, tok.pad_token_id)
    assert ids.shape == (1, 16) and ids[0, -1] == tok.pad_token_id
    out = generate(model, ids, temperature=0.5, max_new_tokens=8, generator=0)
    assert out.shape == (1, 24) and torch.equal(out[:, :16], ids)
