"""``POST /v1/images/generations`` on the shipped digits pipeline, through the openai client."""

from __future__ import annotations

import base64
import io
import threading

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("diffusers")
Image = pytest.importorskip("PIL.Image")

from implicit_temperature.serve import start_server  # noqa: E402


@pytest.fixture(scope="module")
def server():
    try:
        handle = start_server("digits", adapter_options={"num_inference_steps": 4})
    except Exception as exc:  # noqa: BLE001 - the digits demo is optional in an installation
        pytest.skip(f"digits demo unavailable: {exc}")
    yield handle
    handle.stop()


def test_images_b64_json_with_temperature_and_quantizer(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
    kw = dict(model="digits", n=3, response_format="b64_json")
    resp = client.images.generate(
        prompt="a digit",
        extra_body={"temperature": 0.5, "seed": 1},
        **kw,
    )
    assert len(resp.data) == 3
    for item in resp.data:
        img = Image.open(io.BytesIO(base64.b64decode(item.b64_json)))
        assert img.size == (8, 8) and img.format == "PNG"
    block = resp.model_extra["implicit_temperature"]
    assert block["temperature"] == 0.5 and block["draws"] >= 3 and block["seed"] == 1
    assert block["prompt_used"] is False  # an unconditional DDPM: said, not silently dropped
    again = client.images.generate(
        prompt="a digit",
        extra_body={"temperature": 0.5, "seed": 1},
        **kw,
    )
    assert [d.b64_json for d in again.data] == [d.b64_json for d in resp.data]
    # the request may pick another registered quantizer by name (digits by default)
    hashed = client.images.generate(
        prompt="a digit",
        extra_body={"temperature": 2.0, "seed": 2, "quantizer": "image_hash"},
        **kw,
    )
    assert len(hashed.data) == 3
    with pytest.raises(openai.BadRequestError, match="url"):
        client.images.generate(prompt="a digit", model="digits", response_format="url")
    with pytest.raises(openai.BadRequestError, match="unknown quantizer"):
        client.images.generate(prompt="a digit", model="digits", extra_body={"quantizer": "nope"})
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.images.generate(prompt="a digit", model="digits", extra_body={"temperature": 0})
    with pytest.raises(openai.BadRequestError, match="serves /v1/images/generations"):
        client.completions.create(model="digits", prompt="cat ", max_tokens=4)


def _concurrently(server, bodies: list[dict]) -> list:
    client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
    out: list = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def run(i: int) -> None:
        barrier.wait()
        out[i] = client.images.generate(model="digits", prompt="a digit", **bodies[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


@pytest.mark.filterwarnings("ignore::implicit_temperature.AccuracyWarning")
def test_concurrent_images_requests_share_one_pipeline_batch(server, monkeypatch):
    """Two concurrent unseeded requests with equal settings: one core call for both (2 + 3
    images together); seeded requests keep their own stream (their images are the same alone
    and next to others)."""
    engine = server.state.engine
    calls = []
    real = engine._sampler_cls

    class Counting(real):
        def sample(self, temperature, **kw):
            calls.append(kw["num_outputs"])
            return super().sample(temperature, **kw)

    monkeypatch.setattr(engine, "_sampler_cls", Counting)
    monkeypatch.setattr(server.state.batcher, "max_wait", 0.5)  # both surely in one batch
    body = dict(extra_body={"temperature": 0.5, "method": "batch", "num_samples": 8})
    first, second = _concurrently(server, [dict(body, n=2), dict(body, n=3)])
    assert calls == [5]  # one core call, both requests' images drawn together
    assert len(first.data) == 2 and len(second.data) == 3
    for resp in (first, second):
        block = resp.model_extra["implicit_temperature"]
        assert block["batched_with"] == 2 and block["seed"] is None
    calls.clear()
    seeded = dict(extra_body={**body["extra_body"], "seed": 9}, n=2)
    alone = _concurrently(server, [seeded])[0]
    with_others = _concurrently(server, [seeded, dict(body, n=3), dict(body, n=1)])[0]
    assert [d.b64_json for d in with_others.data] == [d.b64_json for d in alone.data]
    assert with_others.model_extra["implicit_temperature"]["batched_with"] == 1
    assert sorted(calls) == [2, 2, 4]  # the seeded one alone, the two unseeded together
