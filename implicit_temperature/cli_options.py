"""Argparse pieces shared by the ``itemp`` commands (``sample`` in ``jobs/args.py``, ``serve`` in
``serve/args.py``).

A leaf of the command-line layer: it imports only argparse and the torch-free
:mod:`~implicit_temperature.core.options`, and the commands' option modules import it (never the
other way round), so neither command's options depend on the other's.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .core.errors import InvalidOptionError
from .core.options import positive_int


def positive_int_arg(text: str) -> int:
    """An argparse ``type``: ``text`` as an integer >= 1 (the core's check), else an
    :class:`argparse.ArgumentTypeError` that argparse reports with the flag's name."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    try:
        return positive_int("value", value)  # the core's check; argparse names the flag
    except InvalidOptionError:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}") from None


def _json_or_text(text: str) -> Any:
    """``text`` parsed as JSON when it is JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def key_value(text: str) -> tuple[str, Any]:
    """An argparse ``type``: ``KEY=VALUE`` as ``(key, value)``, dashes in KEY made underscores and
    VALUE parsed as JSON when it is JSON, else kept as text; no ``=`` or an empty KEY is an
    :class:`argparse.ArgumentTypeError`."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.replace("-", "_"), _json_or_text(value)


def add_adapter_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``-o/--adapter-option KEY=VALUE`` on ``parser``, repeatable: ``args.adapter_options`` is the
    list of :func:`key_value` pairs in command-line order (``[]`` when not given); ``help`` is the
    command's help line for it."""
    parser.add_argument(
        "-o",
        "--adapter-option",
        dest="adapter_options",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help,
    )
