"""``Endpoint``: the model object of the endpoint adapter (where an OpenAI-compatible API is)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.errors import InvalidArgumentError


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible HTTP endpoint serving one or more models.

    base_url: the API root, e.g. ``"http://127.0.0.1:8000/v1"`` (``/completions`` and
        ``/chat/completions`` are appended).
    model: the served model's name (``"model"`` of every request); None: the adapter asks
        ``GET /models`` and uses the only model served (an error when there are several).
    api_key: sent as ``Authorization: Bearer ...``; never stored, never part of the store key.
    timeout: seconds per request (a timeout is retried like a 5xx).
    headers: extra HTTP headers.
    """

    base_url: str
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    headers: dict[str, str] | None = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise InvalidArgumentError(
                f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got "
                f"{self.base_url!r}"
            )
        if not (isinstance(self.timeout, (int, float)) and self.timeout > 0):
            raise InvalidArgumentError(
                f"timeout must be a number of seconds > 0, got {self.timeout!r}"
            )
