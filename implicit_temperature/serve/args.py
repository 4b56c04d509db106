"""The options of ``itemp serve`` (argparse only: importing this module imports neither torch nor
FastAPI, so ``itemp --help`` stays fast)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..cli_options import add_adapter_option, positive_int_arg
from ..core.errors import InvalidArgumentError

DESCRIPTION = """\
Serve a model over an OpenAI-compatible HTTP API: /v1/completions for CALM models (any
temperature, exact or batch; SSE streaming), /v1/images/generations for image pipelines,
/v1/models, /health and /metrics (Prometheus). Requests that arrive together are decoded in one
batch; each keeps its own seed stream, so an answer never depends on its batch-mates.
Binds 127.0.0.1 unless --host says otherwise. SIGTERM or Ctrl-C stop accepting requests,
finish the ones in flight and exit 0."""

EPILOG = """\
examples:
  itemp serve calm                                  # http://127.0.0.1:8000/v1
  itemp serve calm --port 8001 --api-key secret     # clients send Authorization: Bearer secret
  itemp serve digits --quantizer classifier         # images endpoint
  curl http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \\
      -d '{"model": "calm", "prompt": "cat ", "temperature": 0.3, "max_tokens": 8, "seed": 1}'

See docs/serving.md (openai client, lm-evaluation-harness, a real CALM checkpoint)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``itemp serve``, each with its default in its help line (in this order,
    which is the order of ``--help``)."""
    _add_endpoint(parser)
    _add_model_options(parser)
    _add_batching(parser)
    _add_request_limits(parser)
    _add_logging(parser)


def _add_endpoint(parser: argparse.ArgumentParser) -> None:
    """What is served and where: MODEL, ``--host``, ``--port``, ``--api-key`` (default
    ``$ITEMP_API_KEY``) and ``--served-model-name``."""
    parser.add_argument(
        "model",
        help="as for itemp sample: a shipped demo name (calm, digits, ...), a diffusers pipeline "
        "folder, or package.module:factory",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("ITEMP_API_KEY"),
        help="require Authorization: Bearer KEY on /v1 routes (default: $ITEMP_API_KEY, else none)",
    )
    parser.add_argument(
        "--served-model-name",
        default=None,
        metavar="NAME",
        help="the model id clients send (default: MODEL as given)",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """How the model is loaded, as for ``itemp sample``: ``--adapter``, ``--quantizer`` (for image
    models, the default a request may override), ``-o/--adapter-option`` and ``--device``."""
    parser.add_argument("--adapter", default=None, metavar="NAME", help="as for itemp sample")
    parser.add_argument(
        "--quantizer",
        default=None,
        metavar="NAME",
        help="image models: default quantizer (requests may override it) (default: the adapter's)",
    )
    add_adapter_option(parser, help="adapter option, as for itemp sample (default: none)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="(default: %(default)s)"
    )


def _add_batching(parser: argparse.ArgumentParser) -> None:
    """How requests are batched: ``--max-batch`` rows at most, gathered for ``--max-wait-ms``
    (its ``>= 0`` check is in :func:`config_kwargs`)."""
    parser.add_argument(
        "--max-batch",
        type=positive_int_arg,
        default=32,
        metavar="B",
        help="rows (prompts x n) decoded together at most (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=10.0,
        metavar="W",
        help="a batch starts once no request has arrived for W ms (at most 4 W after the first; "
        "see docs/serving.md) (default: %(default)s)",
    )


def _add_request_limits(parser: argparse.ArgumentParser) -> None:
    """What one request may ask for (the :class:`~implicit_temperature.serve.server.Limits`
    fields): ``--max-prompt-tokens``, ``--max-tokens-limit``, ``--max-n``, ``--max-num-samples``
    and ``--pad-prompts``."""
    parser.add_argument("--max-prompt-tokens", type=positive_int_arg, default=2048, metavar="L")
    parser.add_argument(
        "--max-tokens-limit",
        type=positive_int_arg,
        default=1024,
        metavar="L",
        help="largest max_tokens a request may ask for (default: %(default)s)",
    )
    parser.add_argument(
        "--max-n", type=positive_int_arg, default=64, metavar="N", help="largest n (default: 64)"
    )
    parser.add_argument(
        "--max-num-samples",
        type=positive_int_arg,
        default=10_000,
        metavar="N",
        help="largest num_samples a request may ask for (default: %(default)s)",
    )
    parser.add_argument(
        "--pad-prompts",
        choices=("none", "right", "left"),
        default="none",
        help="CALM: a prompt that is not whole chunks of K tokens is an error ('none'), or is "
        "padded up to whole chunks with the pad token on the right (as the reference CALM "
        "generate does) or left (default: %(default)s)",
    )


def _add_logging(parser: argparse.ArgumentParser) -> None:
    """``--log-level``: uvicorn's log level."""
    parser.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="uvicorn's log level; info logs each request (default: %(default)s)",
    )


def config_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~implicit_temperature.serve.launcher.ServeConfig` fields of parsed args."""
    from .server import Limits

    if args.max_wait_ms < 0:
        raise InvalidArgumentError("--max-wait-ms must be >= 0")
    return dict(
        model=args.model,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        served_model_name=args.served_model_name,
        adapter=args.adapter,
        adapter_options=dict(args.adapter_options),
        quantizer=args.quantizer,
        device=args.device,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        limits=Limits(
            max_prompt_tokens=args.max_prompt_tokens,
            max_tokens=args.max_tokens_limit,
            max_n=args.max_n,
            max_num_samples=args.max_num_samples,
            pad_prompts=args.pad_prompts,
        ),
        log_level=args.log_level,
    )
