"""A small OpenAI-compatible completions server for tests (stdlib only, loopback, free port).

``FakeOpenAI(texts, probs)`` answers ``POST /v1/completions`` (and ``/v1/chat/completions``)
with ``n`` completions drawn from a fixed categorical law over ``texts``: with the request's
``seed`` the answer is a function of the request (as servers that honour ``seed`` do). It counts
requests (``requests``, and ``bodies``: every body received), and can misbehave on purpose:
``fail_first=[429, 503]`` answers the first requests with those statuses; ``max_n`` caps ``n``
(returns fewer choices); ``reject_n`` answers 400 to any ``n`` > 1.
"""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(
        self,
        texts: list[str],
        probs: list[float],
        *,
        model: str = "fake",
        fail_first: list[int] | None = None,
        max_n: int | None = None,
        reject_n: bool = False,
    ) -> None:
        self.texts, self.probs, self.model = list(texts), list(probs), model
        self.fail = list(fail_first or [])
        self.max_n, self.reject_n = max_n, reject_n
        self.requests = 0
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": fake.model}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests += 1
                    fake.bodies.append(body)
                    status = fake.fail.pop(0) if fake.fail else 200
                if status != 200:
                    self._send(status, {"error": {"message": f"injected {status}"}})
                    return
                n = int(body.get("n", 1))
                if fake.reject_n and n > 1:
                    self._send(400, {"error": {"message": "n > 1 is not supported"}})
                    return
                if fake.max_n is not None:
                    n = min(n, fake.max_n)
                rng = random.Random(body.get("seed"))
                picks = rng.choices(range(len(fake.texts)), weights=fake.probs, k=n)
                chat = self.path.endswith("/chat/completions")
                choices = [
                    {"index": i, "finish_reason": "stop"}
                    | (
                        {"message": {"role": "assistant", "content": fake.texts[p]}}
                        if chat
                        else {"text": fake.texts[p]}
                    )
                    for i, p in enumerate(picks)
                ]
                self._send(
                    200,
                    {
                        "id": f"cmpl-{fake.requests}",
                        "object": "chat.completion" if chat else "text_completion",
                        "model": fake.model,
                        "choices": choices,
                        "usage": {"completion_tokens": 3 * n, "prompt_tokens": 5},
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
