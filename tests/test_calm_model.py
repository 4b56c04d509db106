"""The shipped CALM demo model, its tokenizer, the adapter's structure checks and draws."""

from __future__ import annotations

import json
import socket

import pytest
import torch
from conftest import tiny_calm_config as tiny_config
from torch import nn

import implicit_temperature as it
from implicit_temperature.adapters.calm import CALMAdapter, check_calm_model
from implicit_temperature.adapters.calm.backbone import backbone_forward
from implicit_temperature.demos.calm import (
    CALM,
    DEMO_PROMPTS,
    CALMConfig,
    CharTokenizer,
    grammar,
    load_demo_model,
)
from implicit_temperature.demos.calm.pretrained import DEMO_MODEL_DIR, DEMO_MODEL_NAME


@pytest.fixture(scope="module")
def demo():
    return load_demo_model()


# -- the shipped model ---------------------------------------------------------------------------
def test_demo_model_loads_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_demo_model tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    model, tok = load_demo_model()
    assert isinstance(model, CALM) and not model.training
    assert model.patch_size == 4 and tok.vocab_size == model.config.vocab_size
    weights = DEMO_MODEL_DIR / f"{DEMO_MODEL_NAME}.safetensors"
    assert weights.stat().st_size < 4 * 2**20  # a few MB at most
    record = json.loads((DEMO_MODEL_DIR / f"{DEMO_MODEL_NAME}.json").read_text())
    assert record["training"]["script"] == "scripts/train_calm.py"
    assert record["training"]["seconds_calm"] > 0


def test_demo_autoencoder_round_trips_every_grammar_chunk(demo):
    model, tok = demo
    table = grammar.chunk_ids(tok)  # (13, K)
    with torch.no_grad():
        mean, _ = model.ae_model.encoder(table).squeeze(-2).chunk(2, dim=-1)
        assert torch.equal(model.ae_model.decoder(mean[:, None]).argmax(-1), table)


def test_demo_backbone_is_a_transformers_llama_model(demo):
    transformers = pytest.importorskip("transformers")
    model, _ = demo
    assert isinstance(model.transformer, transformers.LlamaModel)
    cfg = model.transformer.config
    assert (cfg.hidden_size, cfg.num_hidden_layers) == (
        model.config.hidden_size,
        model.config.num_layers,
    )
    record = json.loads((DEMO_MODEL_DIR / f"{DEMO_MODEL_NAME}.json").read_text())
    assert record["training"]["transformers"].split(".")[0] in ("4", "5")


def test_kv_cache_matches_full_forward(demo):
    """The real transformers cache API, through the adapter's version-aware backbone call."""
    model, tok = demo
    ids = tok.encode("cat saw rat.dog ")
    with torch.no_grad():
        full, none = backbone_forward(model, model.chunk_embeds(ids), use_cache=False)
        first, cache = backbone_forward(model, model.chunk_embeds(ids[:, :8]), use_cache=True)
        rest, cache = backbone_forward(
            model, model.chunk_embeds(ids[:, 8:]), cache=cache, use_cache=True
        )
    assert none is None and cache is not None
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, atol=1e-5, rtol=1e-5)
    assert full.shape == (1, 4, model.config.hidden_size)


def test_save_and_load_round_trip(tmp_path):
    model = CALM(tiny_config()).eval()
    model.save_pretrained(tmp_path, name="m", extra={"note": 1})
    again = CALM.from_pretrained(tmp_path, name="m")
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(FileNotFoundError, match="train_calm.py"):
        CALM.from_pretrained(tmp_path, name="missing")
    with pytest.raises(ValueError, match="unknown CALMConfig fields"):
        CALMConfig.from_dict({"hidden_size": 8, "typo_size": 3})


# -- tokenizer -----------------------------------------------------------------------------------
def test_tokenizer_round_trip_and_errors():
    tok = CharTokenizer()
    ids = tok.encode("cat saw rat.")
    assert ids.shape == (1, 12) and ids.dtype == torch.long
    assert tok.decode(ids) == "cat saw rat."
    with_eos = torch.cat([ids[0], torch.tensor([tok.eos_token_id, 0, 0])])
    assert tok.decode(with_eos) == "cat saw rat."
    assert tok.decode(with_eos, skip_special_tokens=False) == "cat saw rat.<eos><pad><pad>"
    assert tok.batch_decode(torch.cat([ids, ids])) == ["cat saw rat."] * 2
    with pytest.raises(ValueError, match=r"allowed characters are ' \.abc"):
        tok.encode("Cat saw rat!")
    with pytest.raises(ValueError, match="empty prompt"):
        tok.encode("")
    with pytest.raises(ValueError, match="batch_decode"):
        tok.decode(torch.cat([ids, ids]))
    for p in DEMO_PROMPTS:
        assert tok.encode(p).shape[1] % 4 == 0


# -- handles() and structure errors --------------------------------------------------------------
class _Partial(nn.Module):
    """Has a backbone and a head but no autoencoder."""

    def __init__(self) -> None:
        super().__init__()
        full = CALM(tiny_config())
        self.patch_size = 4
        self.transformer = full.transformer
        self.embed_proj = full.embed_proj
        self.generative_head = full.generative_head


def test_handles_is_specific(demo):
    model, _ = demo
    assert CALMAdapter.handles(model)
    assert CALMAdapter.handles(CALM(tiny_config()))
    assert not CALMAdapter.handles(_Partial())
    assert not CALMAdapter.handles(nn.Linear(3, 3))
    assert not CALMAdapter.handles(object())
    assert not CALMAdapter.handles(lambda m: m)


def test_handles_rejects_a_diffusers_pipeline():
    diffusers = pytest.importorskip("diffusers")
    unet = diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 8),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    pipe = diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler())
    assert not CALMAdapter.handles(pipe)
    assert not CALMAdapter.handles(unet)


def test_missing_attributes_give_a_clear_error():
    missing = r"not a CALM model: missing \['ae_model', 'ae_model.decoder'\]"
    with pytest.raises(TypeError, match=missing):
        check_calm_model(_Partial())
    with pytest.raises(TypeError, match="not a CALM model"):
        CALMAdapter(nn.Linear(2, 2), context=torch.zeros(1, 4, dtype=torch.long))


def test_registered_as_plugin_and_found_by_sampler(demo):
    model, tok = demo
    assert it.plugins.get_adapter("calm") is CALMAdapter
    sampler = it.TemperatureSampler(model, context=tok.encode("cat "))
    assert isinstance(sampler.adapter, CALMAdapter)


# -- the adapter ---------------------------------------------------------------------------------
def test_draw_is_batched_and_reproducible(demo):
    model, tok = demo
    ctx = torch.cat([tok.encode("cat "), tok.encode("dog ")])
    a = CALMAdapter(model, context=ctx)
    assert a.batched and a.num_problems == 2
    x = a.draw(500, generator=torch.Generator().manual_seed(3))
    y = a.draw(500, generator=torch.Generator().manual_seed(3))
    assert x.shape == (2, 500, 4) and x.dtype == torch.long and torch.equal(x, y)
    assert torch.equal(a.quantize(x), x)
    # the two contexts have different verb laws: 'cat ' -> mostly 'saw ', 'dog ' -> mostly 'fed '
    saw, fed = tok.encode("saw ")[0], tok.encode("fed ")[0]
    assert (x[0] == saw).all(-1).double().mean() > 0.4
    assert (x[1] == fed).all(-1).double().mean() > 0.4


def test_backbone_runs_once_per_context(demo, monkeypatch):
    model, tok = demo
    calls = []
    original = model.transformer.forward
    monkeypatch.setattr(
        model.transformer, "forward", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    a = CALMAdapter(model, context=tok.encode("cat "))
    for _ in range(5):
        a.draw(10)
    assert len(calls) == 1


class _ReferenceHead(nn.Module):
    """A generative head without a ``generator`` argument, like the reference implementation."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def sample(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.head.sample(hidden_states)


def test_generator_is_honoured_for_heads_without_generator_argument():
    model = CALM(tiny_config()).eval()
    model.generative_head = _ReferenceHead(model.generative_head)
    a = CALMAdapter(model, context=torch.zeros(2, 8, dtype=torch.long))
    x = a.draw(50, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    y = a.draw(50, generator=torch.Generator().manual_seed(5))
    assert torch.equal(x, y)


def test_adapter_rejects_bad_options(demo):
    model, tok = demo
    with pytest.raises(ValueError, match="exactly one of context="):
        CALMAdapter(model)
    with pytest.raises(ValueError, match="not a multiple of the model's patch_size K=4"):
        CALMAdapter(model, context=tok.encode("cat"))
    with pytest.raises(ValueError, match=r"shape \(B, L\)"):
        CALMAdapter(model, context=tok.encode("cat ")[0])
    with pytest.raises(ValueError, match="outside"):
        CALMAdapter(model, context=torch.full((1, 4), 99))
    with pytest.raises(ValueError, match="int n >= 1"):
        CALMAdapter(model, context=tok.encode("cat ")).draw(0)


# -- the grammar the demo model is trained on ----------------------------------------------------
def test_grammar_law_and_sampler():
    from scipy import stats

    m = grammar.transition_matrix()
    torch.testing.assert_close(m.sum(1), torch.ones(len(m), dtype=torch.float64))
    law = grammar.next_chunk_law(CharTokenizer(), "cat ")
    assert law == {"saw ": 0.5, "fed ": 0.3, "met ": 0.15, "hid ": 0.05}
    assert grammar.next_chunk_law(CharTokenizer(), "dog ")["fed "] == 0.5
    streams = grammar.sample_chunk_streams(20000, 4, generator=torch.Generator().manual_seed(0))
    # first chunk ~ BRANCH over subjects; the verb after subject 0 ~ row 0 of the matrix
    first = torch.bincount(streams[:, 0], minlength=13).double()
    assert stats.chisquare(first[:4], 20000 * m[13, :4]).pvalue > 1e-3 and first[4:].sum() == 0
    after_cat = streams[streams[:, 0] == 0, 1]
    verbs = torch.bincount(after_cat, minlength=13).double()
    assert stats.chisquare(verbs[4:8], len(after_cat) * m[0, 4:8]).pvalue > 1e-3
    with pytest.raises(ValueError, match="multiple of 4"):
        grammar.next_chunk_law(CharTokenizer(), "cat")


# -- a model shaped like the reference implementation --------------------------------------------
class _ReferenceDecoder(nn.Module):
    """The reference ``Decoder.forward`` contract, exactly: latents ``(B, S, D)`` only (anything
    else raises, as the real one fails), logits flattened over the chunks ``(B, S * K, V)``."""

    def __init__(self, decoder: nn.Module, patch_size: int) -> None:
        super().__init__()
        self.decoder = decoder
        self.patch_size = patch_size
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, latent_states: torch.Tensor) -> torch.Tensor:
        if latent_states.dim() != 3:
            raise RuntimeError(f"reference decoder got {latent_states.dim()}-D latents")
        self.shapes.append(tuple(latent_states.shape))
        b, s, _ = latent_states.shape
        logits = self.decoder(latent_states)
        assert logits.shape[:2] == (b, s * self.patch_size)
        return logits


class _ReferenceLike(nn.Module):
    """Only the reference attributes; head without generator=, flattened decoder output."""

    def __init__(self, model: CALM) -> None:
        super().__init__()
        self.patch_size = model.patch_size
        self.transformer = model.transformer
        self.embed_proj = model.embed_proj
        self.generative_head = _ReferenceHead(model.generative_head)
        self.ae_model = nn.Module()
        self.ae_model.decoder = _ReferenceDecoder(model.ae_model.decoder, model.patch_size)


def test_reference_like_model_is_driven_through_its_attributes_only(demo):
    from implicit_temperature.adapters.calm import generate

    model, tok = demo
    ref = _ReferenceLike(model).eval()
    assert CALMAdapter.handles(ref)
    a = CALMAdapter(ref, context=tok.encode("cat "))
    x = a.draw(4000, generator=torch.Generator().manual_seed(1))
    assert x.shape == (1, 4000, 4)
    assert ref.ae_model.decoder.shapes == [(4000, 1, model.config.latent_size)]
    # same model underneath, so the same law: 'saw ' about half of the draws (4 sd band)
    saw = (x[0] == tok.encode("saw ")[0]).all(-1).double().mean().item()
    assert abs(saw - 0.5) < 4 * (0.25 / 4000) ** 0.5 + 0.02
    ids = torch.cat([tok.encode("cat "), tok.encode("owl ")])
    out1 = generate(ref, ids, temperature=0.5, max_new_tokens=12, generator=3)
    out2 = generate(ref, ids, temperature=0.5, max_new_tokens=12, generator=3)
    assert out1.shape == (2, 16) and torch.equal(out1, out2)
