"""Keyword checks with messages that say which keyword is unknown, where, and what was meant.

Users reach a model through three layers of keywords: ``TemperatureSampler(model, **options)``
(adapter options), ``sampler.sample(T, **options)`` (sampling options) and, for pipelines, the
model's own call arguments. A misplaced or misspelled keyword must be reported at the layer where
it was written, with the closest valid name, not as a failure deep inside another layer.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

# one list of sampling keywords, derived from SampleOptions; one "did you mean"
from ..core.errors import UnknownOptionError
from ..core.options import SAMPLE_KEYWORDS, did_you_mean

__all__ = [
    "SAMPLE_KEYWORDS",
    "UnknownOptionError",
    "did_you_mean",
    "keyword_names",
    "misplaced_hint",
    "quantizer_option_names",
    "sample_hint",
]


def keyword_names(
    fn: Callable[..., Any], *, skip: Iterable[str] = ("self",)
) -> tuple[set[str], bool]:
    """Names ``fn`` accepts as keywords, and whether it also takes ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set(), True
    names = {
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in set(skip)
    }
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def quantizer_option_names() -> dict[str, str]:
    """Option name -> a registered quantizer that takes it (``cell_size`` -> ``grid``, ...)."""
    from .manager import get_quantizers

    out: dict[str, str] = {}
    for qname, reg in sorted(get_quantizers().items()):
        names, _ = keyword_names(reg.obj)
        for option in names - {"batched"}:
            out.setdefault(option, qname)
    return out


def sample_hint(name: str, value: Any) -> str:
    """Where ``name`` belongs when it is a keyword of ``sample()``, else ''."""
    if name not in SAMPLE_KEYWORDS:
        return ""
    call = "0.5" if name == "temperature" else f"0.5, {name}={value!r}"
    return f" {name!r} is an argument of sample(): pass it there, e.g. sampler.sample({call})"


def misplaced_hint(name: str, value: Any) -> str:
    """Where ``name`` belongs when it is a sampling or quantizer keyword, else ''."""
    if name in SAMPLE_KEYWORDS:
        return sample_hint(name, value)
    qoptions = quantizer_option_names()
    if name in qoptions:
        q = qoptions[name]
        return (
            f" {name!r} is an option of the {q!r} quantizer: pass quantizer options as "
            f"quantizer={q!r}, quantizer_options={{{name!r}: {value!r}}}"
        )
    return ""
