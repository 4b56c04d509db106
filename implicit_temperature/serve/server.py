"""The FastAPI app of ``itemp serve`` (vLLM's ``entrypoints/openai/api_server.py`` layout).

Routes: ``GET /v1/models``, ``POST /v1/completions`` (CALM; SSE streaming), ``POST
/v1/images/generations`` (pipelines), ``GET /health``, ``GET /metrics``. With an API key every
``/v1`` route needs ``Authorization: Bearer KEY`` (as vLLM); ``/health`` and ``/metrics`` stay
open. Bad input is a 400 with an OpenAI error body before anything is queued; a failure of the
model is a 500 for that request only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from ..core.errors import ImplicitTemperatureError
from .batching import Batcher
from .engine import CompletionResult, CompletionWork, ImageResult, ImageWork
from .errors import APIError, error_body, install_handlers
from .metrics import Metrics
from .protocol import (
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    ImageData,
    ImageRequest,
    ImageResponse,
    ModelCard,
    ModelList,
    TemperatureInfo,
    Usage,
)
from .validation import completion_work, image_work

#: Status logged (and counted) when the client went away before its answer.
CLIENT_CLOSED = 499


@dataclass
class Limits:
    """What one request may ask for (each over-limit request is a 400 naming the limit)."""

    max_prompt_tokens: int = 2048
    max_tokens: int = 1024
    max_n: int = 64
    max_num_samples: int = 10_000
    max_prompts: int = 64
    #: "none": a prompt that is not whole chunks of K tokens is a 400; "right" / "left": pad it
    #: up to whole chunks with the pad token (right is what the reference CALM generate does)
    pad_prompts: str = "none"


@dataclass
class ServerState:
    """Everything a route needs: the served name, the engine's batcher, limits and metrics."""

    served_model_name: str
    source: str
    engine: Any
    batcher: Batcher
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def kind(self) -> str:
        return self.engine.kind

    def check_model(self, name: str | None, endpoint: str) -> None:
        if name is not None and name != self.served_model_name:
            raise APIError(
                404,
                f"The model `{name}` does not exist; this server serves "
                f"`{self.served_model_name}` (GET /v1/models)",
                "model",
                "model_not_found",
            )
        if endpoint != self.kind:
            paths = {"completions": "/v1/completions", "images": "/v1/images/generations"}
            raise APIError(
                400,
                f"model `{self.served_model_name}` serves {paths[self.kind]}, not "
                f"{paths[endpoint]}",
                "model",
            )


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data)}\n\n"


async def _await_or_cancel(request: Request, task: asyncio.Future, work: Any) -> Any:
    """The task's result; if the client disconnects first, cancel its work (404-free: 499)."""
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.05)
        if done:
            return task.result()
        if await request.is_disconnected():
            work.cancelled.set()
            task.cancel()
            request.app.state.itemp.metrics.add("cancelled", 1)
            raise APIError(CLIENT_CLOSED, "client closed the connection")


def _failure(exc: BaseException) -> APIError:
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, asyncio.CancelledError):
        return APIError(CLIENT_CLOSED, "request cancelled")
    if isinstance(exc, ImplicitTemperatureError):  # e.g. DrawBudgetExceeded: the request's limits
        return APIError(400, f"{type(exc).__name__}: {exc}")
    return APIError(500, f"model error: {type(exc).__name__}: {exc}")


def _info(choice: Any, temperature: float) -> TemperatureInfo:
    return TemperatureInfo(
        temperature=temperature,
        method="mode" if temperature == 0 else choice.method,
        draws=choice.draws,
        plans=choice.plans,
        estimated_tv=choice.estimated_tv,
        seed=choice.seed,
    )


def completion_response(
    state: ServerState, req: CompletionRequest, result: CompletionResult
) -> CompletionResponse:
    choices = [
        CompletionChoice(
            index=i,
            text=c.text,
            finish_reason=c.finish_reason,
            implicit_temperature=_info(c, req.temperature),
        )
        for i, c in enumerate(result.choices)
    ]
    usage = Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    return CompletionResponse(model=state.served_model_name, choices=choices, usage=usage)


async def _stream(
    state: ServerState, req: CompletionRequest, work: CompletionWork
) -> AsyncIterator[str]:
    """SSE: one event per decoded chunk and choice, then the finish reasons, usage, [DONE]."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    work.on_text = lambda i, text: loop.call_soon_threadsafe(queue.put_nowait, (i, text))
    task = asyncio.ensure_future(state.batcher.submit(work))
    task.add_done_callback(lambda _: queue.put_nowait(None))
    head = CompletionResponse(model=state.served_model_name, choices=[])
    base = {"id": head.id, "object": "text_completion", "created": head.created}
    base["model"] = head.model
    sent = [""] * work.rows

    def event(index: int, text: str, reason: str | None, **extra: Any) -> str:
        choice = {"index": index, "text": text, "finish_reason": reason, "logprobs": None}
        return _sse({**base, "choices": [{**choice, **extra}]})

    try:
        while (item := await queue.get()) is not None:
            i, text = item
            if text.startswith(sent[i]) and len(text) > len(sent[i]):
                yield event(i, text[len(sent[i]) :], None)
                sent[i] = text
        try:
            result = task.result()
        except BaseException as exc:  # noqa: BLE001 - an error event, then the stream ends
            err = _failure(exc)
            yield _sse(error_body(err.status, err.message, err.param, err.code))
            yield "data: [DONE]\n\n"
            return
        for i, c in enumerate(result.choices):
            rest = c.text[len(sent[i]) :] if c.text.startswith(sent[i]) else ""
            info = _info(c, req.temperature).model_dump()
            yield event(i, rest, c.finish_reason, implicit_temperature=info)
        if req.stream_options is not None and req.stream_options.include_usage:
            usage = completion_response(state, req, result).usage
            yield _sse({**base, "choices": [], "usage": usage.model_dump()})
        yield "data: [DONE]\n\n"
    finally:
        if not task.done():  # the client went away mid-stream: stop its rows
            work.cancelled.set()
            task.cancel()
            state.metrics.add("cancelled", 1)


def _route_name(path: str) -> str:
    known = ("/v1/completions", "/v1/images/generations", "/v1/models", "/health", "/metrics")
    return path if path in known else "other"


def build_app(state: ServerState) -> FastAPI:
    """The app serving ``state`` (the batcher is stopped when the app shuts down): the OpenAI
    error handlers, the API-key check and request metrics, then the routes."""
    app = FastAPI(title="implicit-temperature", lifespan=_lifespan(state))
    app.state.itemp = state
    install_handlers(app)
    _add_auth_and_metrics(app, state)
    _add_info_routes(app, state)
    _add_completions_route(app, state)
    _add_images_route(app, state)
    return app


def _lifespan(
    state: ServerState,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: nothing at start; at shutdown, stop ``state``'s batcher (in a thread,
    as it joins the worker)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(state.batcher.stop)

    return lifespan


def _authorized(state: ServerState, request: Request) -> bool:
    """Whether ``request`` may go on: always without an API key or off ``/v1``; otherwise only
    with ``Authorization: Bearer KEY`` (compared in constant time)."""
    if state.api_key is None or not request.url.path.startswith("/v1"):
        return True
    given = request.headers.get("authorization", "")
    return secrets.compare_digest(given.encode(), f"Bearer {state.api_key}".encode())


def _add_auth_and_metrics(app: FastAPI, state: ServerState) -> None:
    """The middleware of every request: a 401 with an OpenAI error body when
    :func:`_authorized` says no, and the request counted with its route, status and latency in
    ``state.metrics`` (the 401s too)."""

    @app.middleware("http")
    async def auth_and_metrics(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        path = request.url.path
        if not _authorized(state, request):
            response: Response = JSONResponse(
                error_body(401, "Unauthorized: send Authorization: Bearer <api key>"), 401
            )
        else:
            response = await call_next(request)
        state.metrics.request(_route_name(path), response.status_code, time.perf_counter() - start)
        return response


def _add_info_routes(app: FastAPI, state: ServerState) -> None:
    """``GET /health`` (status and served name), ``GET /metrics`` (Prometheus text, with the
    queue depth) and ``GET /v1/models`` (the one served model)."""

    @app.get("/health")
    async def health() -> Response:
        return JSONResponse({"status": "ok", "model": state.served_model_name})

    @app.get("/metrics")
    async def metrics() -> Response:
        text = state.metrics.render(queue_depth=state.batcher.depth)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> ModelList:
        card = ModelCard(id=state.served_model_name, root=state.source, kind=state.kind)
        return ModelList(data=[card])


def _add_completions_route(app: FastAPI, state: ServerState) -> None:
    """``POST /v1/completions``: the request checked (400/404 before anything is queued), then
    an SSE stream (``stream``) or one JSON answer; a failure is :func:`_failure`'s error."""

    @app.post("/v1/completions", response_model=None)
    async def completions(req: CompletionRequest, request: Request) -> Response:
        state.check_model(req.model, "completions")
        work = completion_work(state.engine, req, state.limits)
        state.metrics.add("prompt_tokens", sum(int(p.shape[-1]) for p in work.prompts))
        if req.stream:
            return StreamingResponse(_stream(state, req, work), media_type="text/event-stream")
        task = asyncio.ensure_future(state.batcher.submit(work))
        try:
            result = await _await_or_cancel(request, task, work)
        except BaseException as exc:
            raise _failure(exc) from None
        state.metrics.add("generated_tokens", result.completion_tokens)
        state.metrics.add("draws", result.draws)
        return JSONResponse(completion_response(state, req, result).model_dump())


def image_response(req: ImageRequest, work: ImageWork, result: ImageResult) -> dict[str, Any]:
    """The JSON body answering ``req``: the base64 images and the ``implicit_temperature`` block
    (the seed only where it alone decided the images: seeded, or sampled alone), with
    ``prompt_used`` (False: the pipeline is unconditional) and ``batched_with``."""
    info = TemperatureInfo(
        temperature=req.temperature,
        method=result.method,
        draws=result.draws,
        plans=None if result.plan is None else [str(result.plan)],
        estimated_tv=result.estimated_tv,
        seed=work.seed if work.seeded or result.batched_with == 1 else None,
    )
    data = [ImageData(b64_json=b) for b in result.images]
    body = ImageResponse(data=data, implicit_temperature=info).model_dump()
    body["implicit_temperature"]["prompt_used"] = result.prompt_used
    body["implicit_temperature"]["batched_with"] = result.batched_with
    return body


def _add_images_route(app: FastAPI, state: ServerState) -> None:
    """``POST /v1/images/generations``: the request checked (400/404 before anything is queued),
    then :func:`image_response`; a failure is :func:`_failure`'s error."""

    @app.post("/v1/images/generations", response_model=None)
    async def images(req: ImageRequest, request: Request) -> Response:
        state.check_model(req.model, "images")
        work = image_work(state.engine, req, state.limits)
        task = asyncio.ensure_future(state.batcher.submit(work))
        try:
            result: ImageResult = await _await_or_cancel(request, task, work)
        except BaseException as exc:
            raise _failure(exc) from None
        state.metrics.add("draws", result.draws)
        state.metrics.add("images", len(result.images))
        return JSONResponse(image_response(req, work, result))
