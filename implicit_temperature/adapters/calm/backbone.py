"""Calling a CALM backbone (``model.transformer``) across transformers versions.

The reference backbone is a ``transformers.LlamaModel``. Its KV-cache keyword and output field
are ``past_key_values`` in transformers 4.x and early 5.x, and ``cache`` in later 5.x (5.24 still
accepts ``past_key_values`` but warns that it goes away in 5.40). :func:`cache_keyword` reads
the name from the backbone's ``forward`` signature, and :func:`backbone_forward` reads the cache
back from the output field of that name, so no deprecated spelling is ever used.

Transformers 4.x ``LlamaModel`` logs a deprecation notice when it has to build its own cache from
a legacy tuple or from ``None`` with ``use_cache=True``; :func:`initial_cache` hands it an empty
``DynamicCache`` instead. Calls that need no cache pass ``use_cache=False``.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import torch

CACHE_KEYWORDS = ("cache", "past_key_values")


def cache_keyword(transformer: Any) -> str:
    """``"cache"`` or ``"past_key_values"``: the KV-cache keyword ``transformer`` declares.

    A backbone that declares ``past_key_values`` gets it (transformers 4.x, early 5.x and most
    custom backbones); one that declares only ``cache`` gets ``cache`` (later 5.x); one that
    declares neither (``**kwargs`` only, or no signature) gets ``past_key_values``.
    """
    forward = getattr(transformer, "forward", transformer)
    try:
        params = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    if "past_key_values" in params:
        return "past_key_values"
    if "cache" in params:
        return "cache"
    return "past_key_values"


def _is_transformers_model(transformer: Any) -> bool:
    module = sys.modules.get("transformers")
    base = getattr(module, "PreTrainedModel", None) if module is not None else None
    return base is not None and isinstance(transformer, base)


def initial_cache(transformer: Any) -> Any:
    """The cache to pass on the first cached call: an empty ``DynamicCache`` for a transformers
    4.x model (whose ``None`` or tuple caches log a deprecation notice), else ``None`` (the
    backbone creates its own)."""
    if not _is_transformers_model(transformer):
        return None
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return None
    from transformers.cache_utils import DynamicCache

    return DynamicCache()


def output_cache(output: Any, keyword: str) -> Any:
    """The KV cache in a backbone ``output``: the field named ``keyword`` when the output type
    declares it (dataclass or named tuple), else the other spelling, else ``None``."""
    declared = getattr(output, "__dataclass_fields__", None) or getattr(output, "_fields", ())
    for name in (keyword, *(k for k in CACHE_KEYWORDS if k != keyword)):
        if name in declared:
            return getattr(output, name)
    return None


def backbone_forward(
    model: Any,
    inputs_embeds: torch.Tensor,
    *,
    cache: Any = None,
    use_cache: bool = False,
    keyword: str | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, Any]:
    """One backbone call: ``inputs_embeds (B, S, H)`` -> (hidden states ``(B, S, H)``, cache).

    ``use_cache=False`` (head-only and throwaway calls) passes no cache and returns ``None`` as
    the cache. With ``use_cache=True`` the cache (``None`` on the first call: then
    :func:`initial_cache` is used) goes in under ``keyword`` (default: :func:`cache_keyword`)
    and the updated cache comes back. ``kwargs`` (``attention_mask`` and ``position_ids`` for
    left-padded prompts) go to the backbone as they are; none are passed without padding.
    """
    transformer = model.transformer
    if not use_cache:
        return transformer(inputs_embeds=inputs_embeds, use_cache=False, **kwargs)[0], None
    keyword = keyword or cache_keyword(transformer)
    if cache is None:
        cache = initial_cache(transformer)
    if cache is not None:
        kwargs[keyword] = cache
    out = transformer(inputs_embeds=inputs_embeds, use_cache=True, **kwargs)
    return out[0], output_cache(out, keyword)
