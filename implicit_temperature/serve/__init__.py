"""``itemp serve``: an OpenAI-compatible server for any itemp model (the ``[serve]`` extra).

* :func:`start_server` (model spec, host, port, ...) -> :class:`ServerHandle` (``.url``,
  ``.base_url``, ``.stop()``): the server in a background thread.
* :mod:`.protocol` (pydantic request/response models), :mod:`.server` (the FastAPI app),
  :mod:`.engine` (batched CALM decoding, images), :mod:`.batching` (the dynamic batching queue),
  :mod:`.validation`, :mod:`.errors` (OpenAI error bodies), :mod:`.metrics` (Prometheus text).

Importing this package imports FastAPI only when :func:`start_server` (or a submodule) is used.
See docs/serving.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .launcher import ServerHandle

__all__ = ["ServerHandle", "start_server"]


def start_server(
    model: Any, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> ServerHandle:
    """See :func:`implicit_temperature.serve.launcher.start_server`."""
    from .launcher import start_server as start

    return start(model, host, port, **options)


def __getattr__(name: str) -> Any:
    if name == "ServerHandle":
        from .launcher import ServerHandle

        return ServerHandle
    raise AttributeError(name)
