"""TemperatureSampler: temperature control for a model, through the adapter that handles it."""

from __future__ import annotations

from typing import Any, Literal, cast, overload

from ..core import TemperatureResult, temperature_sample
from ..core.errors import InvalidArgumentTypeError
from ..core.options import SampleOptions, keyword_signature
from ..core.preview import Estimate
from .adapter import Adapter
from .manager import PluginError, get_adapter, get_adapters, plugin_errors
from .options import (
    UnknownOptionError,
    did_you_mean,
    keyword_names,
    misplaced_hint,
    sample_hint,
)


class AdapterSelectionError(PluginError, LookupError):
    """No adapter, or more than one, claims a model; the message names the candidates."""


def _model_name(model: Any) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def find_adapter_class(model: Any) -> type:
    """The one registered adapter class whose ``handles(model)`` is True."""
    registered = get_adapters()
    matches, failures = [], []
    for name, reg in sorted(registered.items()):
        try:
            if reg.obj.handles(model):
                matches.append(reg)
        except Exception as exc:  # noqa: BLE001 - a broken handles() must not hide the others
            failures.append(f"{name} ({type(exc).__name__}: {exc})")
    if len(matches) == 1:
        return cast(type, matches[0].obj)
    if not matches:
        known = ", ".join(sorted(registered)) or "none"
        extra = f"; handles() raised in: {', '.join(failures)}" if failures else ""
        problems = plugin_errors()
        if problems:
            extra += "; plugin problems: " + " | ".join(problems)
        raise AdapterSelectionError(
            f"no registered adapter handles a {_model_name(model)} "
            f"(registered adapters: {known}{extra}). "
            "Pass adapter=NAME to force one, or write an adapter plugin (docs/plugins.md); "
            "`itemp plugins` lists what is installed."
        )
    names = ", ".join(f"{r.name!r} (from {r.plugin}, {r.distribution})" for r in matches)
    raise AdapterSelectionError(
        f"several adapters handle a {_model_name(model)}: {names}. Choose one with "
        f"TemperatureSampler(model, adapter={matches[0].name!r})."
    )


def _check_adapter_options(cls: type, options: dict[str, Any]) -> None:
    """Unknown constructor keywords -> UnknownOptionError naming the closest option, or where a
    sampling keyword (``temperature=``) or quantizer option (``cell_size=``) belongs. Adapters
    whose constructor takes ``**kwargs`` (e.g. pipeline call arguments) check those themselves;
    only ``sample()`` keywords are refused for them here."""
    names, var_kw = keyword_names(cls.__init__, skip=("self", "model"))  # type: ignore[misc]
    label = getattr(cls, "name", "") or cls.__name__
    for name, value in options.items():
        if name in names:
            continue
        if var_kw:  # the adapter checks its **kwargs itself; sample() keywords never belong there
            hint = sample_hint(name, value)
            if not hint:
                continue
        else:
            hint = misplaced_hint(name, value)
        raise UnknownOptionError(
            f"TemperatureSampler(model, {name}=...): {name!r} is not an option of the {label!r} "
            f"adapter{did_you_mean(name, names)}.{hint or ''} Its options: "
            f"{', '.join(sorted(names)) or 'none'}"
        )


class TemperatureSampler:
    """Temperature-controlled sampling from ``model`` through an adapter.

    Args:
        model: anything an adapter handles (a CALM model, a diffusers pipeline, ...).
        adapter: None (ask every registered adapter's ``handles(model)``), a registered adapter
            name, an adapter class, or a ready adapter instance (then no options).
        **adapter_options: passed to the adapter's constructor (e.g. ``context=``, ``quantizer=``).

    ``sampler.adapter`` is the adapter instance in use.
    """

    def __init__(
        self, model: Any, adapter: str | type | Adapter | None = None, **adapter_options: Any
    ) -> None:
        if adapter is None:
            cls = find_adapter_class(model)
        elif isinstance(adapter, str):
            cls = get_adapter(adapter)
        elif isinstance(adapter, type):
            cls = adapter
        else:
            if adapter_options:
                raise InvalidArgumentTypeError(
                    "adapter options can't be given with an adapter instance; pass "
                    "them to the adapter's constructor"
                )
            if not (
                callable(getattr(adapter, "draw", None))
                and callable(getattr(adapter, "quantize", None))
            ):
                raise InvalidArgumentTypeError(
                    f"adapter must be a name, an adapter class or an instance with draw() "
                    f"and quantize(), got {adapter!r}"
                )
            self.model, self.adapter = model, adapter
            return
        self.model = model
        _check_adapter_options(cls, adapter_options)
        self.adapter = cls(model, **adapter_options)

    @overload
    def sample(self, temperature: float, *, dry_run: Literal[True], **options: Any) -> Estimate: ...

    @overload
    def sample(self, temperature: float, **options: Any) -> TemperatureResult: ...

    def sample(self, temperature: float, **options: Any) -> TemperatureResult | Estimate:
        """Samples at ``temperature``; same sampling keywords and result as
        :func:`temperature_sample` (the fields of :class:`SampleOptions`: method, plan,
        num_samples, num_outputs, max_draws, generator, share_pool, max_lanes, estimator,
        progress, tolerance, on_inaccurate, dry_run). Batched adapters give a leading B dim.
        ``dry_run=True`` returns the pilot's :class:`~implicit_temperature.core.preview.Estimate`
        instead of sampling. ``method="auto"`` (default) works at
        any T: exact (with a planned collision tree, ``plan``) where it fits the budget, else the
        batch method. An unknown
        keyword raises :class:`UnknownOptionError` naming the closest valid one (and the
        constructor, for adapter options such as ``batch_size``). Adapters with an ``end_run()``
        method have it called after a successful run; what it returns is in
        ``result.extra["adapter"]``."""
        self._check_sample_options(options)
        result = temperature_sample(
            self.adapter.draw,
            temperature,
            key=self.adapter.quantize,
            batched=bool(getattr(self.adapter, "batched", False)),
            key_name=self._key_name,
            advice=_advice(self.adapter),
            options=SampleOptions(**options),
        )
        if not isinstance(result, TemperatureResult):  # dry_run=True: the pilot's Estimate
            return result
        end_run = getattr(self.adapter, "end_run", None)
        if callable(end_run):  # adapters that report a run's own figures (e.g. requests made)
            result.extra["adapter"] = end_run()
        return result

    def _check_sample_options(self, options: dict[str, Any]) -> None:
        accepted = set(SampleOptions.names())
        own = {"temperature"}
        adapter_options, _ = keyword_names(type(self.adapter).__init__, skip=("self", "model"))
        for name in options:
            if name in accepted:
                continue
            where = ""
            if name in adapter_options:
                where = (
                    f" {name!r} is an option of the {self.adapter.name!r} adapter: pass it to the "
                    f"constructor, TemperatureSampler(model, {name}=...)"
                )
            raise UnknownOptionError(
                f"TemperatureSampler.sample() got an unknown keyword {name!r}"
                f"{did_you_mean(name, accepted | own)}{where} (sample() takes: "
                f"{', '.join(sorted((accepted | own) - {'self'}))})"
            )

    def _key_name(self) -> str | None:
        """The quantizer's name for diagnostics and warnings (asked after the draws, when adapters
        that choose their default quantizer from the first samples have chosen it)."""
        q = getattr(self.adapter, "quantizer", None)
        name = getattr(q, "name", None) if q is not None else None
        return name if isinstance(name, str) and name else None

    def __repr__(self) -> str:
        return f"TemperatureSampler({self.adapter!r})"


TemperatureSampler.sample.__signature__ = keyword_signature(  # type: ignore[attr-defined]
    TemperatureSampler.sample
)


def _advice(adapter: Any) -> str | None:
    """An adapter's own advice for the warnings (``accuracy_advice``, a str), if it has one:
    "a coarser quantizer" means nothing to an adapter whose key is the sample itself."""
    advice = getattr(adapter, "accuracy_advice", None)
    return advice if isinstance(advice, str) and advice else None
