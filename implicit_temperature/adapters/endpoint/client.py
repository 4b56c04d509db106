"""HTTP to an OpenAI-compatible endpoint: one request with retries, many under a limit.

:class:`EndpointClient` wraps one ``httpx.Client`` (thread safe, connection pooling).
:meth:`EndpointClient.post` retries on HTTP 429 and 5xx, on timeouts and on transport errors
(refused or dropped connections) with exponential backoff: attempt k waits
``min(max_backoff, backoff * 2**k)`` seconds times a jitter factor in [0.5, 1], drawn from a
``random.Random`` seeded by the request's own seed and the attempt (so waits are bounded and
reproducible; a ``Retry-After`` header, when given, is used instead, capped at ``max_backoff``).
Other 4xx responses are not retried: :class:`EndpointError` carries the server's message.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from ...core.errors import ImplicitTemperatureError

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EndpointError(ImplicitTemperatureError, RuntimeError):
    """A request failed for good (after its retries, or with a status that is not retried)."""

    #: a job that stops on this error resumes where it stopped when rerun (nothing is lost)
    resumable = True

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is in the [endpoint] extra
        raise ImportError(
            "the endpoint adapter needs httpx: pip install 'implicit-temperature[endpoint]'"
        ) from None
    return httpx


def _server_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:300]
    return str(body)[:300]


class EndpointClient:
    """POSTs JSON to ``base_url + path`` with retries (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        headers: dict[str, str] | None = None,
        transport: Any = None,
    ) -> None:
        httpx = _import_httpx()
        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            hdrs["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(timeout=timeout, headers=hdrs, transport=transport)
        self.sleep: Callable[[float], None] = time.sleep
        self.retries = 0  # retried attempts, for reports

    def close(self) -> None:
        self.client.close()

    def wait(self, attempt: int, seed: int, response: Any = None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based) of the request with ``seed``."""
        if response is not None:
            after = response.headers.get("retry-after")
            try:
                if after is not None:
                    return min(self.max_backoff, max(0.0, float(after)))
            except ValueError:
                pass
        jitter = 0.5 + 0.5 * random.Random(seed * 1000003 + attempt).random()
        return min(self.max_backoff, self.backoff * 2**attempt) * jitter

    def get(self, path: str) -> Any:
        """GET ``base_url + path`` (no retries) -> JSON."""
        httpx = self._httpx
        try:
            r = self.client.get(self.base_url + path)
        except httpx.HTTPError as exc:
            raise EndpointError(f"GET {self.base_url}{path} failed: {exc!r}") from None
        if r.status_code != 200:
            raise EndpointError(
                f"GET {self.base_url}{path}: HTTP {r.status_code}: {_server_message(r)}",
                r.status_code,
            )
        return r.json()

    def post(self, path: str, body: dict[str, Any], seed: int = 0) -> dict[str, Any]:
        """POST ``body`` -> the response JSON; :class:`EndpointError` when it fails for good."""
        httpx = self._httpx
        url = self.base_url + path
        last = ""
        for attempt in range(self.max_retries + 1):
            response = None
            try:
                response = self.client.post(url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        last = f"HTTP 200 with a body that is not JSON: {response.text[:200]!r}"
                elif response.status_code in RETRY_STATUS:
                    last = f"HTTP {response.status_code}: {_server_message(response)}"
                else:
                    raise EndpointError(
                        f"POST {url} was refused: HTTP {response.status_code}: "
                        f"{_server_message(response)}",
                        response.status_code,
                    )
            if attempt == self.max_retries:
                break
            delay = self.wait(attempt, seed, response)
            logger.info("POST %s: %s; retry %d in %.2f s", url, last, attempt + 1, delay)
            self.retries += 1
            self.sleep(delay)
        raise EndpointError(
            f"POST {url} failed {self.max_retries + 1} times (last: {last}). Every completion "
            "received so far is in the draw store: rerun with the same seed to resume without "
            "repeating them"
        )

    def post_many(
        self,
        path: str,
        bodies: list[dict[str, Any]],
        seeds: list[int],
        on_response: Callable[[int, dict[str, Any]], None],
        max_concurrency: int,
    ) -> None:
        """POST every body, at most ``max_concurrency`` at a time; ``on_response(i, json)`` is
        called (from this thread, as each one arrives) so it can be stored at once. The first
        failure is raised after the requests already running have finished (and been stored)."""
        if len(bodies) == 1 or max_concurrency <= 1:
            for i, (body, seed) in enumerate(zip(bodies, seeds, strict=True)):
                on_response(i, self.post(path, body, seed))
            return
        error: BaseException | None = None
        with ThreadPoolExecutor(max_workers=min(max_concurrency, len(bodies))) as pool:
            futures = {
                pool.submit(self.post, path, body, seed): i
                for i, (body, seed) in enumerate(zip(bodies, seeds, strict=True))
            }
            for fut in as_completed(futures):
                try:
                    result = fut.result()
                except BaseException as exc:  # noqa: BLE001 - keep storing the others first
                    error = error or exc
                    for other in futures:
                        other.cancel()
                    continue
                on_response(futures[fut], result)
        if error is not None:
            raise error
