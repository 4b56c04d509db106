"""The endpoint adapter against a server no one here wrote: ``transformers serve`` (offline)
serving a tiny causal LM built from a config, with a tokenizer built offline, saved locally.

It ignores ``n`` (one choice per request), so the adapter asks again for the rest, and a rerun
replays the store without a single request. (It takes ``seed`` as a seed of torch's global
generator, so concurrent requests are not reproducible one by one: an empty store does not
repeat a run there; the store does.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import free_port

import implicit_temperature as it
from implicit_temperature.adapters.endpoint import Endpoint

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("accelerate")  # transformers serve loads with a device map

CHARS = "0123456789+= .abcdefghijklmnopqrstuvwxyz"


def build_tiny_lm(folder) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    vocab |= {c: i + 4 for i, c in enumerate(CHARS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    ).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config.do_sample = True
    model.save_pretrained(folder)


@pytest.fixture(scope="module")
def transformers_server(tmp_path_factory):
    exe = shutil.which("transformers", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the transformers CLI is not installed next to this python")
    folder = tmp_path_factory.mktemp("tiny-lm")
    build_tiny_lm(folder)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [exe, "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--device", "cpu"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited: {proc.stdout.read().decode()[-2000:]}")
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not come up in 120 s")
            time.sleep(0.5)
        yield base, str(folder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


class Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    def handle_request(self, request):
        self.posts += request.method == "POST"
        return super().handle_request(request)


def starts_with_digit(text: str) -> str:
    return "digit" if text[:1].isdigit() else "other"


def run(server, store, seed):
    base, name = server
    transport = Counting()
    s = it.TemperatureSampler(
        Endpoint(base, model=name),
        prompt="3+4=",
        quantizer=starts_with_digit,
        max_tokens=4,
        n_per_request=4,
        max_concurrency=4,
        store=store,
        transport=transport,
    )
    res = s.sample(0.5, method="exact", num_outputs=6, generator=seed)
    return res, transport.posts


def test_adapter_against_transformers_serve(transformers_server, tmp_path):
    res, posts = run(transformers_server, tmp_path / "a", seed=3)
    assert len(res.samples) == 6 and all(isinstance(x, str) for x in res.samples)
    assert posts == res.draws  # the server gives one choice per request, whatever n says
    again, posts_again = run(transformers_server, tmp_path / "a", seed=3)
    assert posts_again == 0 and again.samples == res.samples  # replayed from the store
