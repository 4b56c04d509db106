"""``resolve_quantizer``: a registered name, quantizer object or plain callable -> a quantizer."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from ..plugins.options import did_you_mean
from .base import Quantizer, QuantizerError
from .classifier import ClassifierQuantizer


class CallableQuantizer(ClassifierQuantizer):
    """A user callable (or third-party quantizer object) with its output checked.

    Behaves like :class:`ClassifierQuantizer` (integer labels ``(n,)``/``(n, d)``, checked), and
    keeps the wrapped object's ``fit`` / ``fitted`` when it has them.
    """

    name = "callable"

    def __init__(self, fn: Callable[[Any], Any], **options: Any) -> None:
        super().__init__(fn, **options)
        if callable(getattr(fn, "fit", None)):
            self.fit = fn.fit

    @property
    def fitted(self) -> bool:
        return bool(getattr(self.fn, "fitted", True))


def _check_options(
    factory: Callable[..., Any], options: dict[str, Any], label: str, given: tuple[str, ...] = ()
) -> None:
    """Unknown option names -> QuantizerError listing the accepted ones; missing required ones
    (other than ``given``, passed positionally) -> QuantizerError naming the way to pass them.
    Checked before calling the factory, so no bare ``__init__() missing ...`` TypeError."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    params = list(params)
    accepted = [
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        raise QuantizerError(
            f"{label} does not accept option(s) {', '.join(unknown)}"
            f"{did_you_mean(unknown[0], accepted)} It accepts: "
            f"{', '.join(accepted) or 'no options'}"
        )
    required = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.name != "self"
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in options
        and p.name not in given
    ]
    if required:
        example = ", ".join(f"{r!r}: ..." for r in required)
        raise QuantizerError(
            f"{label} needs the option(s) {', '.join(required)}. Quantizer options are passed "
            f"the same way everywhere: to an adapter as quantizer_options={{{example}}} (e.g. "
            f"TemperatureSampler(model, quantizer={label.split()[-1]}, "
            f"quantizer_options={{{example}}})), to resolve_quantizer as keywords "
            f"(resolve_quantizer({label.split()[-1]}, {required[0]}=...)), or build the "
            "quantizer object yourself and pass it as quantizer="
        )


def _split_name_option(
    spec: str, known: dict[str, Any], options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """``"regex:<pattern>"`` -> ``("regex", {"pattern": "<pattern>", ...})`` for a registered
    factory with a ``name_option`` attribute; other names are returned as they are."""
    name, sep, arg = spec.partition(":")
    if not sep or spec in known or name not in known:
        return spec, options
    option = getattr(known[name].obj, "name_option", None)
    if not isinstance(option, str):
        raise QuantizerError(
            f"quantizer {name!r} takes no argument in its name ({spec!r}); pass its options as "
            "quantizer_options"
        )
    if option in options:
        raise QuantizerError(f"{option!r} given twice: in the name {spec!r} and as an option")
    return name, {**options, option: arg}


def resolve_quantizer(spec: Any = "exact", **options: Any) -> Quantizer:
    """Turn ``spec`` into a quantizer ``q(samples, *, batched=None) -> LongTensor``.

    ``spec`` may be

    * a registered name (``"exact"``, ``"grid"``, ``"codebook"``, ``"classifier"``,
      ``"final_number"`` or one a plugin registered; see ``itemp plugins``), or ``"name:arg"``
      for a factory that takes one option in its name (``"regex:<pattern>"``): the factory is
      looked up with
      :func:`implicit_temperature.plugins.get_quantizer` and called with ``**options``, e.g.
      ``resolve_quantizer("grid", cell_size=0.25)``;
    * ``None``: the same as ``"exact"``;
    * a :class:`Quantizer` instance: returned as it is (no options allowed);
    * a :class:`Quantizer` subclass: instantiated with ``**options``;
    * any other callable ``f(samples) -> labels`` (a function, or a quantizer object from another
      library, whose ``fit`` is kept): wrapped so its output is checked on every call (integer
      dtype, one row per sample); options ``batch_size`` and ``batched`` as for ``classifier``.

    The result always accepts ``batched=True`` for ``(B, n, ...)`` samples and returns keys
    ``(B, n)`` / ``(B, n, d)``. Quantizers that need a pilot batch (``codebook``) have
    ``fit(samples)`` and ``fitted``. Raises :class:`QuantizerError` for an unknown name (listing
    the known ones), unknown options (listing the accepted ones) or a spec of the wrong type.
    """
    if spec is None:
        spec = "exact"
    if isinstance(spec, str):
        from ..plugins.manager import get_quantizer, get_quantizers, plugin_errors

        known = get_quantizers()
        spec, options = _split_name_option(spec, known, options)
        conflict = [e for e in plugin_errors() if e.startswith(f"quantizer name {spec!r} ")]
        if conflict:
            raise QuantizerError(f"{conflict[0]}; uninstall or rename one of them")
        if spec not in known:
            names = ", ".join(sorted(known)) or "none"
            raise QuantizerError(
                f"unknown quantizer {spec!r}; registered quantizers: {names}. Pass one of these "
                "names, a Quantizer object, or a callable samples -> integer labels (run "
                "`itemp plugins` to see where each comes from)"
            )
        _check_options(known[spec].obj, options, f"quantizer {spec!r}")
        quantizer = get_quantizer(spec, **options)
        if isinstance(quantizer, Quantizer):
            return quantizer
        if not callable(quantizer):
            raise QuantizerError(
                f"the factory registered as quantizer {spec!r} returned "
                f"{type(quantizer).__name__}, which is not callable; fix the plugin that "
                "registers it (see `itemp plugins`)"
            )
        return CallableQuantizer(quantizer)
    if isinstance(spec, Quantizer):
        if options:
            raise QuantizerError(
                f"options {sorted(options)} cannot be applied to an existing "
                f"{type(spec).__name__}; pass them to its constructor, or pass the "
                "quantizer's registered name instead"
            )
        return spec
    if isinstance(spec, type) and issubclass(spec, Quantizer):
        _check_options(spec, options, spec.__name__)
        return spec(**options)
    if isinstance(spec, type) or not callable(spec):
        raise QuantizerError(
            f"quantizer must be a registered name, a Quantizer object or a callable "
            f"samples -> integer labels, got {spec!r}"
        )
    _check_options(ClassifierQuantizer, options, "a callable quantizer", given=("fn",))
    return CallableQuantizer(spec, **options)


def quantize(spec: Any, samples: Any, **options: Any) -> torch.Tensor:
    """One-shot helper: ``resolve_quantizer(spec, **options)(samples)``."""
    return resolve_quantizer(spec, **options)(samples)
