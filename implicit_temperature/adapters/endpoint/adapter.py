"""The ``endpoint`` adapter: answer-level temperature for any OpenAI-compatible LLM endpoint.

A draw is one completion of a fixed prompt (or chat) from the endpoint; its key is the answer the
completion gives (an answer quantizer: ``final_number`` by default). Temperature then acts on the
law of answers: ``P(answer)^(1/T)``, exactly with the exact method (T <= 1), with majority vote as
the T -> 0 limit. The returned sample is a real completion, whose answer has the tempered law.

Draws are fetched with ``n=`` (``n_per_request`` completions per request) where the server takes
it, else one completion per request; requests run concurrently (``max_concurrency``) and are
retried with backoff (:mod:`.client`). Every response is appended to the draw store
(:mod:`.store`) before its completions are used.

Replay. A run (one ``sample()`` call; its generator) reads the store's *stream* named after the
generator's seed (``generator.initial_seed()``; after a finished run,
:meth:`EndpointAdapter.end_run`, which ``TemperatureSampler.sample`` calls, the next run with the
same seed in the same adapter is ``"<seed>.1"``, and so on; ``stream=`` names it yourself).
``draw(m)`` hands out the stream's next m completions in order, asking the endpoint only for
those the stream does not have yet. The core is deterministic given its generator and the keys it
sees, so a rerun with the same seed makes the
same ``draw(m)`` calls, gets the same completions back (the stored ones, then the same new
requests: request j of a stream always has the same body, its ``seed`` included) and returns the
identical result; an interrupted run resumes without repeating a single stored request.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

import torch

from ...core.errors import InvalidArgumentError, InvalidArgumentTypeError
from ...core.options import positive_int
from ...plugins.adapter import Adapter
from ...quantizers import AnswerQuantizer, Quantizer, resolve_quantizer
from ...quantizers.answers import NO_ANSWER, CallableAnswer
from .client import EndpointClient, EndpointError
from .endpoint import Endpoint
from .store import DrawLog, DrawStore, default_store_root, identity_hash

logger = logging.getLogger(__name__)
_NO_RUN = object()  # no run in progress


def _resolve_answer_key(quantizer: Any, options: dict[str, Any]) -> Quantizer:
    """A registered name (``"final_number"``, ``"regex:<p>"``, ...), a quantizer object, or a plain
    function ``text -> answer`` (wrapped as :class:`CallableAnswer`)."""
    if callable(quantizer) and not isinstance(quantizer, (Quantizer, type, str)):
        return CallableAnswer(quantizer, **options)
    return resolve_quantizer(quantizer, **options)


def _request_seed(identity: str, stream: str, req: int) -> int:
    digest = hashlib.blake2b(f"{identity}/{stream}/{req}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def _check_request_source(
    model: Any, prompt: str | None, messages: list[dict[str, Any]] | None
) -> None:
    """Raise unless ``model`` is an :class:`Endpoint` and exactly one of ``prompt`` (a str) and
    ``messages`` (a list of dicts) is given."""
    if not isinstance(model, Endpoint):
        raise InvalidArgumentTypeError(
            f"the endpoint adapter takes an Endpoint, got {type(model).__name__}"
        )
    if (prompt is None) == (messages is None):
        raise InvalidArgumentError(
            "give the endpoint adapter exactly one of prompt= (completions) or messages= "
            "(chat completions)"
        )
    if prompt is not None and not isinstance(prompt, str):
        raise InvalidArgumentTypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if messages is not None and not (
        isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
    ):
        raise InvalidArgumentTypeError(
            "messages must be a list of {'role': ..., 'content': ...} dicts"
        )


class EndpointAdapter(Adapter):
    """Completions of one prompt from an OpenAI-compatible endpoint, keyed by their answers.

    Args:
        model: an :class:`Endpoint`.
        prompt: the prompt (``POST /completions``); or
        messages: chat messages ``[{"role": ..., "content": ...}]`` (``POST /chat/completions``).
        model_name: overrides ``Endpoint.model``.
        quantizer: the answer key: ``"final_number"`` (default), ``"choice_letter"``,
            ``"normalized_text"``, ``"regex:<pattern>"``, any registered quantizer taking texts,
            a quantizer object, or a function ``text -> answer`` (str, number or None).
        quantizer_options: options of a registered quantizer (e.g. ``{"choices": "ABCDE"}``).
        max_tokens, endpoint_temperature: the endpoint's own ``max_tokens`` and ``temperature``
            (default 1.0: its own law is P; any other value defines another P).
        params: other request fields (``top_p``, ``stop``, ...), sent as they are.
        store: the draw store folder; None: ``$ITEMP_DRAW_STORE`` or
            ``~/.cache/implicit-temperature/draws``; False: memory only (nothing survives).
        n_per_request: completions asked per request with ``n=`` (1: no ``n`` is sent, one
            completion per request; use it for servers that refuse ``n``).
        max_concurrency: requests in flight at once.
        max_retries, backoff, max_backoff: retries on 429/5xx/timeouts/connection errors.
        send_seed: send a ``seed`` per request (derived from the stream and request index), so
            that servers that honour it answer a repeated request identically.
        stream: name the store stream yourself (default: from the generator's seed).
        transport: an ``httpx`` transport (tests, proxies).
    """

    name = "endpoint"

    def __init__(
        self,
        model: Endpoint,
        *,
        prompt: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        model_name: str | None = None,
        quantizer: Any = "final_number",
        quantizer_options: dict[str, Any] | None = None,
        max_tokens: int = 64,
        endpoint_temperature: float = 1.0,
        params: dict[str, Any] | None = None,
        store: str | os.PathLike | bool | None = None,
        n_per_request: int = 16,
        max_concurrency: int = 8,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        send_seed: bool = True,
        stream: str | None = None,
        transport: Any = None,
    ) -> None:
        _check_request_source(model, prompt, messages)
        n_per_request = positive_int("n_per_request", n_per_request)
        max_concurrency = positive_int("max_concurrency", max_concurrency)
        max_tokens = positive_int("max_tokens", max_tokens)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidArgumentError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        self.model = model
        self.prompt, self.messages = prompt, messages
        self.model_name = model_name or model.model
        self.quantizer = _resolve_answer_key(quantizer, dict(quantizer_options or {}))
        self.request_params = {
            "max_tokens": max_tokens,
            "temperature": float(endpoint_temperature),
            **dict(params or {}),
        }
        for reserved in ("model", "prompt", "messages", "n", "seed", "stream"):
            if reserved in (params or {}):
                raise InvalidArgumentError(f"params must not set {reserved!r}: the adapter sets it")
        self.n_per_request, self.max_concurrency = n_per_request, max_concurrency
        self.send_seed = bool(send_seed)
        if store is False:
            self.store = DrawStore(None)
        else:
            self.store = DrawStore(default_store_root() if store in (None, True) else store)
        self.client = EndpointClient(
            model.base_url,
            api_key=model.api_key,
            timeout=model.timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            headers=model.headers,
            transport=transport,
        )
        self.stream_name = stream
        self._log: DrawLog | None = None
        self._run_key: Any = _NO_RUN
        self._stream: str | None = None
        self._stream_uses: dict[str, int] = {}
        self._texts: list[str] = []  # the stream's completions in order (contiguous requests)
        self._owner: list[int] = []  # request index of each
        self._next_req = 0
        self.cursor = 0
        #: this process only: requests sent, completions replayed from the store
        self.session = {"requests_sent": 0, "completions_fetched": 0, "completions_replayed": 0}

    @classmethod
    def handles(cls, model: Any) -> bool:
        return isinstance(model, Endpoint)

    # -- identity and stream ----------------------------------------------------------------
    @property
    def path(self) -> str:
        return "/chat/completions" if self.messages is not None else "/completions"

    def identity(self) -> dict[str, Any]:
        """What the draws are of (the store key): endpoint, model, prompt, parameters."""
        if self.model_name is None:
            self.model_name = self._only_served_model()
        ident: dict[str, Any] = {
            "base_url": self.model.base_url.rstrip("/"),
            "api": self.path,
            "model": self.model_name,
            "params": self.request_params,
            "n_per_request": self.n_per_request,
            "send_seed": self.send_seed,
        }
        if self.messages is not None:
            ident["messages"] = self.messages
        else:
            ident["prompt"] = self.prompt
        return ident

    def _only_served_model(self) -> str:
        listing = self.client.get("/models")
        names = [m.get("id") for m in (listing.get("data") or []) if isinstance(m, dict)]
        if len(names) != 1:
            raise EndpointError(
                f"{self.model.base_url} serves {len(names)} models ({', '.join(map(str, names))}); "
                "name one: Endpoint(base_url, model=...) or the adapter option model_name="
            )
        return str(names[0])

    def _begin(self, generator: torch.Generator | None) -> None:
        """A new run starts with a new generator: choose its stream and rewind."""
        if generator is self._run_key:
            return
        if self._log is None:
            self._log = self.store.log(self.identity())
            # request seeds do not depend on where the server listens (a new port, the same
            # model and prompt: the same requests), the store key does
            where = {k: v for k, v in self._log.identity.items() if k != "base_url"}
            self._ident_hash = identity_hash(where)
        if self.stream_name is not None:
            base = self.stream_name
        else:
            base = "default" if generator is None else str(generator.initial_seed())
        uses = self._stream_uses.get(base, 0)
        self._base = base
        self._stream = base if uses == 0 else f"{base}.{uses}"
        self._run_key = generator
        self._texts, self._owner, self._next_req, self.cursor = [], [], 0, 0
        self._extend()

    def _extend(self) -> None:
        """Append the stream's stored requests that follow the contiguous prefix."""
        records = self._log.stream(self._stream)
        while self._next_req in records:
            rec = records[self._next_req]
            texts = [str(c.get("text", "")) for c in rec["choices"]]
            self._texts += texts
            self._owner += [self._next_req] * len(texts)
            self._next_req += 1

    # -- drawing ------------------------------------------------------------------------------
    def draw(self, n: int, generator: torch.Generator | None = None) -> list[str]:
        """The run's next ``n`` completion texts (stored ones first, then new requests)."""
        self._begin(generator)
        want = self.cursor + n
        have_before = len(self._texts)
        self._fill(want)
        out = self._texts[self.cursor : want]
        replayed = max(0, min(want, have_before) - self.cursor)
        self.session["completions_replayed"] += replayed
        self.cursor = want
        return out

    def _plan(self, missing: int) -> list[tuple[int, int]]:
        """(request index, n) of the requests that bring ``missing`` more completions."""
        plan, req = [], self._next_req
        while missing > 0:
            k = min(self.n_per_request, missing)
            plan.append((req, k))
            req, missing = req + 1, missing - k
        return plan

    def _fill(self, want: int) -> None:
        while len(self._texts) < want:
            records = self._log.stream(self._stream)
            plan = self._plan(want - len(self._texts))
            todo = []
            for req, k in plan:
                if req in records:  # answered before a crash, after a request still missing
                    if int(records[req]["n"]) != k:
                        raise EndpointError(
                            f"the draw store holds request {req} of stream {self._stream!r} "
                            f"with n={records[req]['n']}, but this run asks n={k}: the run "
                            "differs from the one that wrote it; use another store or stream"
                        )
                    continue
                todo.append((req, k))
            bodies = [self._body(req, k) for req, k in todo]
            seeds = [_request_seed(self._ident_hash, self._stream, req) for req, _ in todo]

            def store(i: int, response: dict[str, Any], _todo=todo) -> None:
                req, k = _todo[i]
                self._log.append(self._record(req, k, response))
                self.session["requests_sent"] += 1

            if todo:
                self.client.post_many(self.path, bodies, seeds, store, self.max_concurrency)
            before = len(self._texts)
            self._extend()
            self.session["completions_fetched"] += len(self._texts) - before
            if len(self._texts) == before:
                raise EndpointError("the endpoint returned no completions; check the request")

    def _body(self, req: int, k: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, **self.request_params}
        if self.messages is not None:
            body["messages"] = self.messages
        else:
            body["prompt"] = self.prompt
        if self.n_per_request > 1:
            body["n"] = k
        if self.send_seed:
            body["seed"] = _request_seed(self._ident_hash, self._stream, req)
        return body

    def _record(self, req: int, k: int, response: dict[str, Any]) -> dict[str, Any]:
        choices = response.get("choices")
        if not isinstance(choices, list) or not choices:
            raise EndpointError(f"the endpoint's response has no choices: {str(response)[:300]}")
        choices = sorted(choices, key=lambda c: int(c.get("index", 0)))
        out = []
        for c in choices:
            if self.messages is not None:
                text = (c.get("message") or {}).get("content") or ""
            else:
                text = c.get("text") or ""
            out.append({"text": text, "finish_reason": c.get("finish_reason")})
        rec: dict[str, Any] = {"stream": self._stream, "req": req, "n": k, "choices": out}
        if self.send_seed:
            rec["seed"] = _request_seed(self._ident_hash, self._stream, req)
        usage = response.get("usage")
        if isinstance(usage, dict):
            rec["usage"] = usage
        return rec

    # -- keys and reports ---------------------------------------------------------------------
    def quantize(self, samples: Any) -> torch.Tensor:
        """Answer keys ``(n,)`` int64 of completion texts (:data:`NO_ANSWER` for none)."""
        return self.quantizer(samples)

    def answer_of(self, text: str) -> str | None:
        """The canonical answer of a completion text (None when it has none)."""
        if isinstance(self.quantizer, AnswerQuantizer):
            return self.quantizer.extract(text)
        key = int(self.quantizer([text])[0])
        return None if key == NO_ANSWER else str(key)

    def run_report(self) -> dict[str, Any]:
        """The current run's cost, the same on every rerun with the same seed: completions used,
        the requests that produced them, those with no answer, and their completion tokens."""
        used = self._owner[: self.cursor]
        reqs = sorted(set(used))
        no_answer = sum(self.answer_of(t) is None for t in self._texts[: self.cursor])
        tokens = 0
        records = self._log.stream(self._stream) if self._log is not None else {}
        for r in reqs:
            usage = records.get(r, {}).get("usage") or {}
            tokens += int(usage.get("completion_tokens") or 0)
        return {
            "requests": len(reqs),
            "completions": self.cursor,
            "no_answer": no_answer,
            "completion_tokens": tokens,
            "stream": self._stream,
        }

    def end_run(self) -> dict[str, Any]:
        """Close the current run (after a success): :meth:`run_report`; the next run with the same
        seed gets a stream of its own. A run that failed is not closed, so rerunning it with the
        same seed in the same process resumes it. ``TemperatureSampler.sample`` calls this."""
        report = self.run_report()
        if self._run_key is not _NO_RUN:
            self._stream_uses[self._base] = self._stream_uses.get(self._base, 0) + 1
        self._run_key = _NO_RUN
        return report

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"<EndpointAdapter {self.model.base_url} model={self.model_name!r}>"
