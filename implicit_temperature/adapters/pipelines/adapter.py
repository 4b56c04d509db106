"""What the ``diffusion`` and ``flow_matching`` adapters share: :class:`SampleAdapter` (a
``driver(n, generator) -> tensor`` plus :class:`~.keys.AdapterKeys`) and the check of the
keywords that reach a pipeline's ``**call_kwargs``."""

from __future__ import annotations

from typing import Any

import torch

from ...plugins import Adapter
from ...plugins.options import (
    UnknownOptionError,
    did_you_mean,
    keyword_names,
    misplaced_hint,
)
from .driver import _call_parameters
from .keys import AdapterKeys


def check_call_kwargs(adapter: type[Adapter], target: Any, call_kwargs: dict[str, Any]) -> None:
    """Keywords that reached ``**call_kwargs`` must be call arguments of ``target`` (a pipeline),
    or None for a model that takes none (then only typos of adapter options and misplaced
    keywords are reported here). Anything else raises :class:`UnknownOptionError` saying
    it was passed to the adapter, the closest valid name, and where sampling keywords
    (``temperature=``) and quantizer options (``cell_size=``) go instead."""
    options, _ = keyword_names(adapter.__init__, skip=("self", "model"))  # type: ignore[misc]
    names: set[str]
    if target is None:  # other keywords get the caller's own message (pipeline-only options)
        names, var_kw, what = set(), True, "a velocity field takes no call arguments"
    else:
        names, var_kw = _call_parameters(target)
        names = names - {"self"}
        what = f"{type(target).__name__}.__call__ takes no argument(s) {{bad}}"
    for name, value in call_kwargs.items():
        if name in names:
            continue
        hint = misplaced_hint(name, value)
        close = did_you_mean(name, options | names, cutoff=0.8 if var_kw else 0.6)
        if var_kw and not (hint or did_you_mean(name, options, cutoff=0.8)):
            continue  # the pipeline takes **kwargs: it may well use this one
        raise UnknownOptionError(
            f"unknown keyword {name!r} passed to the {adapter.name!r} adapter "
            f"(TemperatureSampler(model, {name}=...) or {adapter.__name__}(model, ...)): it is "
            f"not an adapter option, and {what.format(bad=[name])}{close}{hint} Adapter options: "
            f"{', '.join(sorted(options))}"
            + (f"; pipeline arguments: {', '.join(sorted(names))}" if names else "")
        )


class SampleAdapter(Adapter):
    """Shared machinery: a ``driver(n, generator) -> tensor`` plus :class:`AdapterKeys`."""

    def _setup(
        self,
        model: Any,
        driver: Any,
        *,
        quantizer: Any,
        quantizer_options: dict[str, Any] | None,
        fit_samples: int,
        fit_seed: int,
    ) -> None:
        self.model = model
        self._driver = driver
        self._keys = AdapterKeys(
            quantizer,
            quantizer_options,
            model=model,
            pilot=self._draw_unbatched_pilot,
            fit_samples=fit_samples,
            fit_seed=fit_seed,
        )

    @property
    def batched(self) -> bool:  # type: ignore[override]
        return self.num_problems is not None

    @property
    def num_problems(self) -> int | None:
        return getattr(self._driver, "num_problems", None)

    @property
    def quantizer(self) -> Any:
        """The quantizer in use (None until the default is chosen from the first samples)."""
        return self._keys.quantizer

    def fit(self) -> SampleAdapter:
        """Fit the quantizer now (a quantizer with ``fit``, e.g. a codebook, on ``fit_samples``
        pilot draws; the default quantizer is chosen from one pilot draw) instead of inside the
        first ``sample()``. Returns the adapter."""
        self._keys.fit()
        return self

    def _draw_unbatched_pilot(self, m: int, generator: torch.Generator) -> torch.Tensor:
        x = self._driver(m, generator)
        return x.flatten(0, 1) if self.batched else x

    def draw(
        self, n: int, generator: torch.Generator | None = None, active: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` i.i.d. samples as one tensor ``(n, ...)`` (``(B, n, ...)`` for B prompts; with
        ``active``, a bool (B,) mask, only those prompts: ``(B_active, n, ...)``).

        Images come back channels-first ``(n, C, H, W)``; see
        :mod:`implicit_temperature.adapters.pipelines.outputs`. The same ``generator`` state
        gives the same samples (CPU; on GPU up to the usual kernel non-determinism).
        """
        if active is None:
            return self._driver(n, generator)
        return self._driver(n, generator, active)

    def quantize(self, samples: Any) -> torch.Tensor:
        """Keys for ``samples``: LongTensor ``(n,)``/``(n, d)`` (batched: ``(B, n, ...)``)."""
        return self._keys(samples, batched=self.batched)
