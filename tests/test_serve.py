"""``itemp serve`` through the official ``openai`` client, on a loopback server started here.

Covers completions (one prompt, a list, n=4, seeds, streaming, our extra_body fields), the
OpenAI error bodies for bad input, the API key, /metrics, a failing model (500, then it keeps
serving), dynamic batching that never changes an answer, and the tempered law itself.
"""

from __future__ import annotations

import threading

import httpx
import pytest
import torch

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")

from conftest import chi_square_pvalue  # noqa: E402

from implicit_temperature.adapters.calm.adapter import sample_chunks  # noqa: E402
from implicit_temperature.demos.calm import load_demo_model  # noqa: E402
from implicit_temperature.jobs.models import LoadedModel  # noqa: E402
from implicit_temperature.serve import start_server  # noqa: E402
from implicit_temperature.serve.validation import core_supports  # noqa: E402

KEY = "test-key"


class FaultyHead(torch.nn.Module):
    """The demo head, but it raises while ``fail`` is set (a model error mid-request)."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head, self.fail = head, False

    def sample(self, hidden: torch.Tensor, generator: torch.Generator | None = None):
        if self.fail:
            raise RuntimeError("injected head failure")
        return self.head.sample(hidden, generator=generator)


@pytest.fixture(scope="module")
def demo():
    model, tok = load_demo_model()
    model.generative_head = FaultyHead(model.generative_head)
    return model, tok


@pytest.fixture(scope="module")
def server(demo):
    model, tok = demo
    handle = start_server(
        LoadedModel(model, tok, "calm"), api_key=KEY, max_batch=64, max_wait_ms=30
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)


def texts(resp) -> list[str]:
    return [c.text for c in resp.choices]


def test_models_health_and_the_done_when_call(server, client):
    assert [m.id for m in client.models.list().data] == ["calm"]
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    kw = dict(model="calm", prompt="cat ", temperature=0.3, max_tokens=8, n=4, seed=1)
    first = client.completions.create(**kw)
    assert len(first.choices) == 4 and [c.index for c in first.choices] == [0, 1, 2, 3]
    assert texts(client.completions.create(**kw)) == texts(first)  # same seed, same answer
    for c in first.choices:
        assert c.finish_reason in ("stop", "length")
        block = c.model_extra["implicit_temperature"]
        assert block["method"] in ("exact", "batch", "batch+exact") and block["draws"] > 0
        assert block["temperature"] == 0.3 and block["seed"] == 1
    assert first.usage.prompt_tokens == 4
    assert first.usage.completion_tokens == sum(len(t) for t in texts(first))  # 1 char = 1 token
    other = client.completions.create(**{**kw, "seed": 2})
    assert texts(other) != texts(first)  # 4 outputs of 8 tokens each: equal by chance ~never


def test_list_prompt_is_prompt_major_and_prompt_zero_keeps_its_seed(client):
    kw = dict(model="calm", temperature=0.5, max_tokens=8, n=2, seed=7)
    both = client.completions.create(prompt=["cat ", "fox met "], **kw)
    assert len(both.choices) == 4 and both.usage.prompt_tokens == 12
    alone = client.completions.create(prompt="cat ", **kw)
    assert texts(both)[:2] == texts(alone)


def test_token_id_prompts_answer_as_their_text(demo, client):
    """prompt as token ids (one list of ints, or a list of lists, as the OpenAI API and vLLM
    take them): the same seed gives the same text as the prompt sent as a string."""
    _, tok = demo
    cat, fox = tok.encode("cat ")[0].tolist(), tok.encode("fox met ")[0].tolist()
    kw = dict(model="calm", temperature=0.5, max_tokens=8, n=2, seed=7)
    as_text = client.completions.create(prompt=["cat ", "fox met "], **kw)
    as_ids = client.completions.create(prompt=[cat, fox], **kw)
    assert texts(as_ids) == texts(as_text) and as_ids.usage.prompt_tokens == 12
    one = client.completions.create(prompt=cat, **kw)
    assert texts(one) == texts(as_text)[:2]


@pytest.mark.parametrize(
    "prompt,words",
    [
        ([0, 1, 99, 2], "vocabulary [0, 30)"),  # an id past the demo's 30 tokens
        ([-1, 1, 2, 3], "vocabulary"),
        ([[1, 2, 3, 4], []], "prompt[1] is an empty list"),
        ([1, 2, 3], "multiple of"),  # not whole chunks of K = 4
        ([1.5, 2, 3, 4], None),  # not ints: a type error (422 -> 400 body)
        ([True, 2, 3, 4], None),
    ],
)
def test_bad_token_id_prompts_are_a_clear_400(client, prompt, words):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="calm", prompt=prompt, max_tokens=4)
    body = info.value.response.json()["error"]
    assert body["param"].startswith("prompt")
    if words is not None:
        assert words in body["message"]


def test_streaming_one_event_per_chunk(client):
    kw = dict(model="calm", prompt="cat ", temperature=0.5, max_tokens=12, seed=3)
    whole = client.completions.create(**kw)
    events = list(client.completions.create(stream=True, **kw))
    pieces = [e.choices[0].text for e in events if e.choices]
    assert "".join(pieces) == whole.choices[0].text
    assert 2 <= len([p for p in pieces if p]) <= 3  # 12 tokens = 3 chunks of 4 (EOS may end it)
    assert events[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_stop_strings_cut_the_text(client):
    resp = client.completions.create(
        model="calm", prompt="cat ", temperature=1.0, max_tokens=40, n=8, seed=5, stop=["."]
    )
    for c in resp.choices:
        assert "." not in c.text and c.finish_reason == "stop"


def test_extra_body_method_plan_and_tolerance(client):
    kw = dict(model="calm", prompt="cat ", temperature=0.5, max_tokens=4, n=4, seed=1)
    batch = client.completions.create(extra_body={"method": "batch", "num_samples": 64}, **kw)
    assert {c.model_extra["implicit_temperature"]["method"] for c in batch.choices} == {"batch"}
    assert batch.choices[0].model_extra["implicit_temperature"]["draws"] == 64
    exact = client.completions.create(extra_body={"method": "exact", "plan": "flat"}, **kw)
    assert {c.model_extra["implicit_temperature"]["method"] for c in exact.choices} == {"exact"}
    mode = client.completions.create(**{**kw, "temperature": 0.0})
    assert mode.choices[0].model_extra["implicit_temperature"]["method"] == "mode"
    if core_supports("tolerance"):
        tol = client.completions.create(extra_body={"tolerance": 0.05}, **kw)
        assert len(tol.choices) == 4
    else:  # this core predates tolerance=: a clear 400, not a silent ignore
        with pytest.raises(openai.BadRequestError, match="tolerance is not supported"):
            client.completions.create(extra_body={"tolerance": 0.05}, **kw)


@pytest.mark.parametrize(
    "change,param",
    [
        ({"temperature": -0.5}, "temperature"),
        ({"temperature": float("nan")}, None),  # the client cannot even send NaN as JSON
        ({"n": 0}, "n"),
        ({"n": 100_000}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**6}, "max_tokens"),
        ({"prompt": "cat"}, "prompt"),  # not whole chunks of K = 4
        ({"prompt": "CAT "}, "prompt"),  # outside the vocabulary
        ({"prompt": "cat " * 1000}, "prompt"),  # over --max-prompt-tokens
        ({"prompt": []}, "prompt"),
        ({"extra_body": {"bogus_field": 1}}, "bogus_field"),
        ({"extra_body": {"method": "greedy"}}, "method"),
        ({"extra_body": {"method": "exact"}, "temperature": 2.0}, "method"),
        ({"extra_body": {"plan": "2+("}}, "plan"),
        ({"max_tokens": "eight"}, "max_tokens"),
        ({"top_p": 0.5}, "top_p"),
        ({"logprobs": 2}, "logprobs"),
    ],
)
def test_bad_input_is_an_openai_400(server, client, change, param):
    kw = dict(model="calm", prompt="cat ", max_tokens=8)
    kw.update(change)
    if param is None:  # NaN: send the raw body the way a non-Python client could
        r = httpx.post(
            server.base_url + "/completions",
            content=b'{"model": "calm", "prompt": "cat ", "temperature": NaN}',
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        assert r.status_code in (400, 422)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        return
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(**kw)
    body = info.value.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert body["type"] == "invalid_request_error" and body["param"].startswith(param)
    assert len(body["message"]) > 10


def test_wrong_model_and_wrong_endpoint(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-4", prompt="cat ", max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="serves /v1/completions"):
        client.images.generate(model="calm", prompt="a digit")


def test_api_key(server):
    bad = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.completions.create(model="calm", prompt="cat ", max_tokens=4)
    r = httpx.get(server.base_url + "/models")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(server.url + "/health").status_code == 200  # health stays open, as vLLM


def test_model_error_is_a_500_and_the_server_keeps_serving(demo, client):
    head = demo[0].generative_head
    head.fail = True
    try:
        with pytest.raises(openai.InternalServerError, match="injected head failure"):
            client.completions.create(model="calm", prompt="cat ", max_tokens=4, seed=0)
    finally:
        head.fail = False
    ok = client.completions.create(model="calm", prompt="cat ", max_tokens=4, seed=0)
    assert len(ok.choices[0].text) == 4


def test_metrics_count_requests_latency_and_draws(server, client):
    client.completions.create(model="calm", prompt="cat ", max_tokens=4, seed=0)
    text = httpx.get(server.url + "/metrics").text
    assert 'itemp_requests_total{endpoint="/v1/completions",status="200"}' in text
    assert 'itemp_requests_total{endpoint="/v1/completions",status="400"}' in text
    assert "itemp_request_seconds_bucket" in text and "itemp_batch_size_count" in text
    draws = [ln for ln in text.splitlines() if ln.startswith("itemp_draws_total ")]
    assert draws and float(draws[0].split()[1]) > 0


def _concurrently(client, requests: list[dict]) -> list:
    out: list = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def run(i: int) -> None:
        barrier.wait()
        out[i] = client.completions.create(**requests[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


@pytest.mark.parametrize(
    "temperature,method",
    [(1.0, "auto"), (0.5, "auto"), (0.5, "batch"), (0.5, "exact"), (0.7, "exact"), (0.0, "auto")],
)
def test_an_answer_does_not_depend_on_its_batch_mates(server, client, temperature, method):
    """The same request and seed: the same text alone and inside a batch of 16 (different
    prompts and seeds around it; half with the same settings, so that at T = 1, in mode
    decoding, with method="batch" and with method="exact" they share the target's core call,
    one stream per row; half at other temperatures)."""
    prompts = ["cat ", "fox met ", "the ", "dog saw "]
    target = dict(
        model="calm",
        prompt="dog saw ",
        temperature=temperature,
        max_tokens=12,
        seed=11,
        n=2,
        extra_body={"method": method},
    )
    alone = texts(client.completions.create(**target))
    before = server.state.metrics.batch_size.n
    mates = [
        dict(
            target,
            prompt=prompts[i % 4],
            seed=100 + i,
            temperature=temperature if i % 2 else (0.3, 0.7, 1.0)[i % 3],
        )
        for i in range(15)
    ]
    answers = _concurrently(client, [target, *mates])
    batches = server.state.metrics.batch_size.n - before
    assert batches < 16, "the 16 requests were never batched together"
    assert texts(answers[0]) == alone


@pytest.mark.parametrize("method", ["batch", "exact", "auto"])
def test_seeded_requests_share_one_core_call_per_step(server, client, monkeypatch, method):
    """16 concurrent seeded method="batch" (or "exact", or "auto", which plans each row from its
    own pilot) requests at one temperature: the core is called once per decoding step and
    batch, not once per request (per-row generators)."""
    from implicit_temperature.adapters.calm import generation

    calls = []
    real = generation.temperature_sample

    def counting(*args, **kwargs):
        calls.append(kwargs["generator"])
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "temperature_sample", counting)
    kw = dict(model="calm", temperature=0.5, max_tokens=8, extra_body={"method": method})
    before = server.state.metrics.batch_size.n
    _concurrently(client, [dict(kw, prompt="cat ", seed=200 + i) for i in range(16)])
    batches = server.state.metrics.batch_size.n - before
    assert batches < 16
    assert len(calls) <= 2 * batches  # 8 tokens: at most 2 steps per batch
    assert max(len(g) for g in calls) > 1  # a list of generators, one per row


def test_tempered_first_chunk_law_through_the_server(demo, client):
    """At T = 0.5 (exact method, fixed seeds) the first-chunk frequencies over many requests
    for one prompt match the square of the model's T = 1 frequencies (chi-square)."""
    model, tok = demo
    prompt = tok.encode("cat ")
    with torch.no_grad():  # the T = 1 law of the first chunk: 100k draws from the model itself
        from implicit_temperature.adapters.calm.adapter import context_hidden_states

        hidden = context_hidden_states(model, prompt)
        ref = sample_chunks(model, hidden, 100_000, generator=12345)[0]
    words = tok.batch_decode(ref)
    vocab = sorted(set(words))
    index = {w: i for i, w in enumerate(vocab)}
    p = torch.bincount(torch.tensor([index[w] for w in words]), minlength=len(vocab)).double()
    target = p**2 / (p**2).sum()
    got = []
    for seed in range(16):  # 16 requests x n = 64: 1024 first chunks at T = 0.5
        resp = client.completions.create(
            model="calm",
            prompt="cat ",
            temperature=0.5,
            max_tokens=4,
            n=64,
            seed=seed,
            extra_body={"method": "exact"},
        )
        got += [index[c.text] for c in resp.choices]
    pvalue = chi_square_pvalue(torch.tensor(got), target)
    assert pvalue > 1e-3, pvalue
    # and the test has power: the untempered law is rejected on the same counts
    assert chi_square_pvalue(torch.tensor(got), p / p.sum()) < 1e-3
