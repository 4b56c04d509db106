"""``POST /v1/images/generations`` on the shipped digits pipeline, through the openai client."""

from __future__ import annotations

import base64
import io

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
