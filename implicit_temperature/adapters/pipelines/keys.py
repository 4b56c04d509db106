"""The key function of the pipeline and velocity-field adapters, and their default quantizer.

* :func:`default_quantizer_for` — nearest mixture component for models with ``mixture_means``,
  :class:`~implicit_temperature.quantizers.ImageHashQuantizer` for image-shaped samples.
* :class:`AdapterKeys` — resolves the adapter's ``quantizer`` option (registered name, quantizer
  object, callable, or None for the default), fits quantizers that need a pilot batch, and turns
  failures on the model's output shape into errors that name the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ...core.errors import InvalidArgumentTypeError
from ...quantizers import (
    ImageHashQuantizer,
    NearestComponentQuantizer,
    Quantizer,
    QuantizerError,
    resolve_quantizer,
)


def default_quantizer_for(model: Any, samples: torch.Tensor | None = None) -> Quantizer | None:
    """The default quantizer: nearest mixture component for models exposing ``mixture_means``;
    the image hash for image-shaped samples ``(n, C, H, W)`` / ``(n, H, W)``; else None."""
    means = getattr(model, "mixture_means", None)
    if means is not None:
        return NearestComponentQuantizer(means)
    if samples is not None and samples.ndim in (3, 4):
        return ImageHashQuantizer()
    return None


class AdapterKeys:
    """The adapter's key function: ``keys(samples, batched) -> LongTensor``.

    Args:
        spec: None (default quantizer, chosen from the model or the first samples' shape), a
            registered quantizer name, a quantizer object, or a callable samples -> int labels.
        options: passed to a registered quantizer's factory (``quantizer_options``).
        model: used for the default (``mixture_means``).
        pilot: ``pilot(m, generator) -> samples`` for quantizers with ``fit`` (e.g. codebook);
            they are fitted once, on ``fit_samples`` fresh draws from ``torch.Generator`` seeded
            with ``fit_seed`` — independent of the sampling draws, so cells are fixed first.
    """

    def __init__(
        self,
        spec: Any,
        options: dict[str, Any] | None,
        *,
        model: Any,
        pilot: Callable[[int, torch.Generator], torch.Tensor],
        fit_samples: int = 1024,
        fit_seed: int = 0,
    ) -> None:
        from ...core.options import positive_int

        self.model = model
        self.pilot = pilot
        self.fit_samples = positive_int("fit_samples", fit_samples)
        self.fit_seed = fit_seed
        self.quantizer: Any = None
        if spec is None:
            if options:
                raise InvalidArgumentTypeError("quantizer_options need quantizer=<registered name>")
            self.quantizer = default_quantizer_for(model)
        else:
            self.quantizer = resolve_quantizer(spec, **(options or {}))

    def fit(self) -> None:
        """Choose the default quantizer (from one pilot draw) and fit a quantizer that needs it."""
        if self.quantizer is None:
            self(self.pilot(1, torch.Generator().manual_seed(self.fit_seed)))
        self._ensure_fitted()

    def _ensure_fitted(self) -> None:
        q = self.quantizer
        if callable(getattr(q, "fit", None)) and not getattr(q, "fitted", True):
            g = torch.Generator().manual_seed(self.fit_seed)
            q.fit(self.pilot(self.fit_samples, g))

    def __call__(self, samples: Any, batched: bool = False) -> torch.Tensor:
        if self.quantizer is None:
            x = torch.as_tensor(samples) if not isinstance(samples, torch.Tensor) else samples
            flat = x.flatten(0, 1) if batched else x
            self.quantizer = default_quantizer_for(self.model, flat)
            if self.quantizer is None:
                raise QuantizerError(
                    f"no default quantizer for samples of shape {tuple(flat.shape[1:])} "
                    "(defaults exist for images and for models with mixture_means); pass "
                    "quantizer='grid' with quantizer_options={'cell_size': ...}, "
                    "quantizer='codebook', or a callable samples -> integer labels"
                )
        self._ensure_fitted()
        shape = tuple(getattr(samples, "shape", ()))
        try:
            if batched:
                return self.quantizer(samples, batched=True)
            return self.quantizer(samples)
        except QuantizerError:
            raise
        except Exception as exc:  # a user callable that cannot take this shape
            raise QuantizerError(
                f"quantizer {self.quantizer!r} failed on samples of shape {shape} "
                f"({type(exc).__name__}: {exc}). The adapter passes the model's outputs as one "
                "tensor (n, ...) — images as (n, C, H, W) floats in [0, 1] — so pass a quantizer "
                "that takes that shape (e.g. reshape/resize inside your callable)"
            ) from exc
