"""Building and running the server: from a model spec to a live uvicorn server.

* :func:`build_state`: load the model (the same resolution and adapter/quantizer options as
  ``itemp sample``, :mod:`implicit_temperature.jobs.models`) and choose its engine.
* :func:`start_server`: run it in a background thread (tests, demos, notebooks) and return a
  :class:`ServerHandle` with ``.url`` and ``.stop()``.
* :func:`serve_forever`: run it in the calling (main) thread, as ``itemp serve`` does; SIGTERM
  and Ctrl-C stop accepting connections, finish the requests in flight and return.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .server import Limits, ServerState, build_app

log = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    """Options of ``itemp serve`` / :func:`start_server` (defaults as in ``itemp serve --help``)."""

    model: Any  # a model spec (demo name, folder, module:factory) or a jobs LoadedModel
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    served_model_name: str | None = None
    adapter: str | None = None
    adapter_options: dict[str, Any] = field(default_factory=dict)
    quantizer: str | None = None
    device: str = "auto"
    max_batch: int = 32
    max_wait_ms: float = 10.0
    limits: Limits = field(default_factory=Limits)
    log_level: str = "warning"


def _device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_state(config: ServeConfig) -> ServerState:
    """Load the model of ``config`` and wrap it in its engine and batcher."""
    from ..adapters.calm.adapter import missing_calm_attributes
    from ..jobs.models import LoadedModel, check_plugins, load_model
    from .batching import Batcher
    from .engine import CALMEngine, ImageEngine
    from .metrics import Metrics

    options = dict(config.adapter_options)
    if config.quantizer is not None:
        options["quantizer"] = config.quantizer
    device = _device(config.device)
    if isinstance(config.model, LoadedModel):
        loaded = config.model
    else:
        check_plugins(config.adapter, options)
        loaded = load_model(str(config.model), device)
    if loaded.tokenizer is not None and not missing_calm_attributes(loaded.model):
        if options or config.adapter not in (None, "calm"):
            from ..jobs.errors import JobError

            raise JobError(
                f"model {loaded.source!r} is a CALM model with a tokenizer: it takes no adapter "
                f"or adapter options here (got adapter={config.adapter!r}, {sorted(options)})"
            )
        engine: Any = CALMEngine(loaded.model, loaded.tokenizer, device)
    else:
        engine = ImageEngine(loaded.model, config.adapter, {**loaded.adapter_options, **options})
    metrics = Metrics()
    return ServerState(
        served_model_name=config.served_model_name or str(loaded.source),
        source=str(loaded.source),
        engine=engine,
        batcher=Batcher(engine, config.max_batch, config.max_wait_ms, metrics),
        limits=config.limits,
        api_key=config.api_key,
        metrics=metrics,
    )


def _uvicorn_server(config: ServeConfig, state: ServerState) -> Any:
    import uvicorn

    app = build_app(state)
    uconfig = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=config.log_level in ("debug", "info"),
        lifespan="on",
        timeout_graceful_shutdown=None,
    )
    return uvicorn.Server(uconfig)


class ServerHandle:
    """A server running in a background thread: ``.url`` (``http://host:port``, the ``/v1``
    base is ``.url + "/v1"``), ``.state``, ``.stop()``; also a context manager."""

    def __init__(self, server: Any, thread: threading.Thread, state: ServerState) -> None:
        self._server, self._thread, self.state = server, thread, state
        sock = server.servers[0].sockets[0].getsockname()
        self.host, self.port = sock[0], int(sock[1])
        self.url = f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI client's ``base_url``: ``.url + "/v1"``."""
        return self.url + "/v1"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, finish the requests in flight, stop the worker, join the thread."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the server at {self.url} did not stop within {timeout} s")

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(
    model: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 60.0,
    **options: Any,
) -> ServerHandle:
    """Start ``itemp serve`` in a background thread and return once it accepts connections.

    Args:
        model: as for ``itemp serve``: a demo name (``"calm"``), a diffusers pipeline folder or
            ``package.module:factory``; or an already loaded
            :class:`~implicit_temperature.jobs.models.LoadedModel`.
        host, port: where to listen (default 127.0.0.1 and a free port; the handle's ``.port``
            and ``.url`` say which).
        options: the other :class:`ServeConfig` fields: ``api_key``, ``served_model_name``,
            ``adapter``, ``adapter_options``, ``quantizer``, ``device``, ``max_batch``,
            ``max_wait_ms``, ``limits`` (:class:`~.server.Limits`), ``log_level``.

    Returns a :class:`ServerHandle`; ``handle.stop()`` (or ``with start_server(...) as h:``)
    shuts it down gracefully.
    """
    config = ServeConfig(model=model, host=host, port=port, **options)
    state = build_state(config)
    server = _uvicorn_server(config, state)
    failed: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # noqa: BLE001 - reported by start_server below
            failed.append(exc)

    thread = threading.Thread(target=run, name="itemp-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if failed or not thread.is_alive():
            state.batcher.stop(1.0)
            raise RuntimeError(
                f"the server did not start on {host}:{port}"
                + (f": {failed[0]}" if failed else " (is the port in use?)")
            )
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the server did not start within {startup_timeout} s")
        time.sleep(0.01)
    return ServerHandle(server, thread, state)


def serve_forever(config: ServeConfig) -> None:
    """Run the server in this thread until SIGTERM / SIGINT (graceful: in-flight requests end)."""
    import signal

    state = build_state(config)
    server = _uvicorn_server(config, state)
    log.warning(
        "serving %s on http://%s:%d/v1 (Ctrl-C or SIGTERM stops)",
        state.served_model_name,
        config.host,
        config.port,
    )
    # uvicorn shuts down gracefully on SIGTERM / SIGINT, then re-raises the signal to the handler
    # that was there before it: make that one a no-op, so a graceful stop exits with status 0
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
