"""Request and response models of the OpenAI-compatible server (pydantic), as in vLLM's
``entrypoints/openai/protocol.py``.

Requests forbid unknown fields (an OpenAI client's typo is a 400, not silently ignored). Standard
OpenAI fields this server cannot honour (``logprobs``, ``echo``, ``best_of``, ``suffix``,
``top_p != 1``, penalties, ``logit_bias``) are declared so that the error names them and says
why. Our own fields (``method``, ``plan``, ``tolerance``, ``max_draws``, ``num_samples``,
``quantizer``) arrive from the ``openai`` client through ``extra_body``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class Strict(BaseModel):
    """Requests: unknown fields are errors; NaN and infinities are not numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SamplingFields(Strict):
    """implicit-temperature's own fields, shared by completions and images (``extra_body``)."""

    method: Literal["auto", "exact", "batch"] = "auto"
    plan: str | None = Field(default=None, max_length=200)
    tolerance: float | None = Field(default=None, gt=0, lt=1)
    max_draws: int | None = Field(default=None, ge=1)
    num_samples: int = Field(default=200, ge=1)
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    user: str | None = Field(default=None, max_length=256)


class StreamOptions(Strict):
    include_usage: bool = False


class CompletionRequest(SamplingFields):
    """``POST /v1/completions``. ``temperature=0`` is mode decoding; unsupported OpenAI
    fields are accepted only at their no-op values (see the module docstring).

    ``prompt``: a string, a list of strings, or token ids as the OpenAI API and vLLM take them:
    one prompt as a list of ints, or several as a list of lists of ints (ids of the model's
    vocabulary; JSON integers only, so ``true`` or ``"5"`` are type errors)."""

    model: str
    prompt: str | list[str] | list[StrictInt] | list[list[StrictInt]]
    max_tokens: int = Field(default=16, ge=1)
    temperature: float = Field(default=1.0, ge=0)
    n: int = Field(default=1, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    # OpenAI fields without a meaning for a sampler that only has draws:
    top_p: float | None = None
    logprobs: int | None = None
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None

    def unsupported(self) -> tuple[str, str] | None:
        """(field, why) for the first OpenAI field set to a value this server cannot honour."""
        why = "CALM has no token logits"
        checks = (
            ("top_p", self.top_p not in (None, 1, 1.0), "nucleus sampling needs logits; " + why),
            ("logprobs", self.logprobs not in (None, 0), why),
            ("echo", bool(self.echo), "echo is only used with logprobs; " + why),
            ("best_of", self.best_of not in (None, 1), "best_of ranks by logprobs; " + why),
            ("suffix", self.suffix is not None, "CALM continues a prompt; it cannot insert"),
            ("presence_penalty", self.presence_penalty not in (None, 0, 0.0), why),
            ("frequency_penalty", self.frequency_penalty not in (None, 0, 0.0), why),
            ("logit_bias", bool(self.logit_bias), why),
        )
        for name, bad, reason in checks:
            if bad:
                return name, f"{name} is not supported by this server: {reason}"
        return None


class ImageRequest(SamplingFields):
    """``POST /v1/images/generations``: ``n`` images at ``temperature`` from the pipeline."""

    model: str | None = None
    prompt: str | None = Field(default=None, max_length=4000)
    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    response_format: Literal["b64_json", "url"] = "b64_json"
    quantizer: str | None = None
    size: str | None = None
    quality: str | None = None
    style: str | None = None


class TemperatureInfo(BaseModel):
    """The ``implicit_temperature`` block of a choice: how its output was sampled."""

    temperature: float
    method: str
    draws: int
    plans: list[str] | None = None
    estimated_tv: float | None = None
    seed: int | None  # None: an unseeded request (its batch may have shared one stream)


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: Literal["stop", "length"] | None
    logprobs: None = None
    implicit_temperature: TemperatureInfo | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: _id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "implicit-temperature"
    root: str | None = None
    kind: Literal["completions", "images"]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ImageData(BaseModel):
    b64_json: str
    revised_prompt: str | None = None
    implicit_temperature: dict[str, Any] | None = None


class ImageResponse(BaseModel):
    created: int = Field(default_factory=lambda: int(time.time()))
    data: list[ImageData]
    implicit_temperature: TemperatureInfo | None = None


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | int | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo
