"""The endpoint adapter against a local OpenAI-compatible server (tests/fake_openai.py) whose
answer law is known: exact answer-level temperature, majority vote at tiny T, retries, the draw
store's replay, n capped or refused, chat messages."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import chi_square_pvalue
from fake_openai import FakeOpenAI

import implicit_temperature as it
from implicit_temperature.adapters.endpoint import Endpoint, EndpointAdapter, EndpointError
from implicit_temperature.quantizers import NO_ANSWER, answer_id

# answers 1000 (0.45, three texts), 999 (0.3, two texts), none (0.15), 1001 (0.1)
TEXTS = ["The answer is 1,000.", "1000.0", "= 1000", "It is 999", "999", "I don't know", "1001"]
PROBS = [0.2, 0.15, 0.1, 0.2, 0.1, 0.15, 0.1]
ANSWERS = {"1000": 0.45, "999": 0.3, None: 0.15, "1001": 0.1}


def key_of(answer):
    return NO_ANSWER if answer is None else answer_id(answer)


def tempered(t: float) -> dict:
    w = {a: p ** (1 / t) for a, p in ANSWERS.items()}
    z = sum(w.values())
    return {a: v / z for a, v in w.items()}


@pytest.fixture
def fake():
    with FakeOpenAI(TEXTS, PROBS) as server:
        yield server


def sampler(fake, tmp_path, **options):
    return it.TemperatureSampler(
        Endpoint(fake.base_url), prompt="What is 999 + 1?", store=tmp_path / "draws", **options
    )


def test_adapter_is_registered_and_found():
    assert it.TemperatureSampler  # noqa: B018
    from implicit_temperature.plugins import get_adapter
    from implicit_temperature.plugins.sampler import find_adapter_class

    assert get_adapter("endpoint") is EndpointAdapter
    assert find_adapter_class(Endpoint("http://127.0.0.1:1/v1")) is EndpointAdapter


@pytest.mark.parametrize("t", [0.5, 0.25])
def test_exact_answer_law_is_tempered(fake, tmp_path, t):
    s = sampler(fake, tmp_path, n_per_request=64)
    res = s.sample(t, method="exact", num_outputs=800 if t == 0.5 else 400, generator=11)
    assert all(isinstance(x, str) and x in TEXTS for x in res.samples)  # real completions
    order = list(ANSWERS)
    index = {key_of(a): i for i, a in enumerate(order)}
    ids = torch.tensor([index[int(k)] for k in res.keys])
    target = torch.tensor([tempered(t)[a] for a in order], dtype=torch.float64)
    assert chi_square_pvalue(ids, target) > 1e-3
    rep = res.extra["adapter"]
    assert rep["completions"] == res.draws and rep["requests"] <= fake.requests
    assert rep["no_answer"] > 0  # "I don't know" is an outcome of its own, counted
    if t == 0.5:  # flat rounds with early exit: 2 / S(2) completions per answer
        s2 = sum(p * p for p in ANSWERS.values())
        assert math.isclose(res.draws / 800, 2 / s2, rel_tol=0.1), (res.draws / 800, 2 / s2)


def test_batch_at_tiny_temperature_returns_the_majority_answer(fake, tmp_path):
    res = sampler(fake, tmp_path).sample(0.01, method="batch", num_samples=64, generator=3)
    assert int(res.keys[0]) == answer_id("1000")


def test_rerun_with_the_same_seed_replays_without_requests(fake, tmp_path):
    first = sampler(fake, tmp_path).sample(0.5, method="exact", num_outputs=40, generator=5)
    sent = fake.requests
    again = sampler(fake, tmp_path).sample(0.5, method="exact", num_outputs=40, generator=5)
    assert fake.requests == sent  # all replayed from the store
    assert again.samples == first.samples and torch.equal(again.keys, first.keys)
    assert again.extra["adapter"] == first.extra["adapter"]
    other = sampler(fake, tmp_path).sample(0.5, method="exact", num_outputs=40, generator=6)
    assert fake.requests > sent and other.extra["adapter"]["stream"] == "6"
    # a second run with the same seed in the same sampler is a run of its own (fresh draws)
    s = sampler(fake, tmp_path)
    s.sample(0.5, method="exact", num_outputs=5, generator=5)
    before = fake.requests
    second = s.sample(0.5, method="exact", num_outputs=5, generator=5)
    assert second.extra["adapter"]["stream"] == "5.1" and fake.requests > before


def test_every_request_has_its_own_seed_and_the_store_has_every_response(fake, tmp_path):
    sampler(fake, tmp_path).sample(0.5, method="exact", num_outputs=30, generator=2)
    seeds = [b["seed"] for b in fake.bodies]
    assert len(set(seeds)) == len(seeds)
    (log,) = (tmp_path / "draws").glob("*/draws.jsonl")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert sorted(r["seed"] for r in lines) == sorted(seeds)
    ident = json.loads((log.parent / "request.json").read_text())
    assert ident["prompt"] == "What is 999 + 1?" and ident["params"]["temperature"] == 1.0


def test_torn_last_line_is_cut_and_asked_again(fake, tmp_path):
    first = sampler(fake, tmp_path).sample(0.5, method="exact", num_outputs=20, generator=4)
    (log,) = (tmp_path / "draws").glob("*/draws.jsonl")
    data = log.read_bytes()
    log.write_bytes(data[:-7])  # a crash inside the last write
    sent = fake.requests
    again = sampler(fake, tmp_path).sample(0.5, method="exact", num_outputs=20, generator=4)
    assert fake.requests == sent + 1 and again.samples == first.samples


def test_retries_on_429_and_503_then_succeeds(tmp_path):
    with FakeOpenAI(TEXTS, PROBS, fail_first=[429, 503, 429]) as fake:
        s = sampler(fake, tmp_path, backoff=0.2, max_backoff=1.0)
        waits = []
        s.adapter.client.sleep = waits.append
        texts = s.adapter.draw(4, generator=torch.Generator().manual_seed(0))
        assert len(texts) == 4 and fake.requests == 4
        assert len(waits) == 3 and all(0.1 <= w <= 1.0 for w in waits)
        assert waits[1] > waits[0] * 1.0  # exponential (jitter in [0.5, 1] of 0.2 * 2**k)


def test_retries_exhausted_and_refusals_are_clear_errors(tmp_path):
    with FakeOpenAI(TEXTS, PROBS, fail_first=[500] * 10) as fake:
        s = sampler(fake, tmp_path, max_retries=2, backoff=0.0)
        with pytest.raises(EndpointError, match="failed 3 times.*draw store"):
            s.sample(0.5, method="exact", generator=0)
        assert fake.requests == 3
    with FakeOpenAI(TEXTS, PROBS, reject_n=True) as fake:
        s = sampler(fake, tmp_path / "b")
        with pytest.raises(EndpointError, match="HTTP 400.*n > 1"):
            s.sample(0.5, method="batch", num_samples=8, generator=0)
        assert fake.requests == 1  # a 400 is not retried
    with pytest.raises(EndpointError, match="failed"):  # nothing listens there
        it.TemperatureSampler(
            Endpoint("http://127.0.0.1:9/v1", model="m"),
            prompt="q",
            store=False,
            max_retries=1,
            backoff=0.0,
        ).sample(0.5, method="batch", num_samples=4)


def test_servers_without_n_or_with_a_cap(tmp_path):
    with FakeOpenAI(TEXTS, PROBS, reject_n=True) as fake:
        s = sampler(fake, tmp_path, n_per_request=1, max_concurrency=4)
        res = s.sample(0.5, method="batch", num_samples=24, generator=0)
        assert fake.requests == 24 and all("n" not in b for b in fake.bodies)
        assert res.extra["adapter"]["requests"] == 24
    with FakeOpenAI(TEXTS, PROBS, max_n=5) as fake:
        s = sampler(fake, tmp_path / "cap", n_per_request=16)
        texts = s.adapter.draw(12, generator=torch.Generator().manual_seed(0))
        assert len(texts) == 12 and fake.requests == 3  # 5 + 5 + 2 (asked 12, then 7, then 2)


def test_chat_messages_and_model_from_the_server(fake, tmp_path):
    s = it.TemperatureSampler(
        Endpoint(fake.base_url),
        messages=[{"role": "user", "content": "999 + 1?"}],
        store=tmp_path,
    )
    res = s.sample(0.5, method="exact", num_outputs=5, generator=0)
    assert all(x in TEXTS for x in res.samples)
    assert s.adapter.model_name == "fake" and fake.bodies[-1]["model"] == "fake"
    assert "messages" in fake.bodies[-1]


def test_bad_options_are_clear():
    e = Endpoint("http://127.0.0.1:1/v1", model="m")
    with pytest.raises(ValueError, match="exactly one of prompt"):
        EndpointAdapter(e, store=False)
    with pytest.raises(ValueError, match="must not set 'n'"):
        EndpointAdapter(e, prompt="q", params={"n": 3}, store=False)
    with pytest.raises(ValueError, match="http"):
        Endpoint("127.0.0.1:8000")
    with pytest.raises(ValueError, match="n_per_request"):
        EndpointAdapter(e, prompt="q", n_per_request=0, store=False)
