"""Quantizers for the diffusion/flow adapters: the image default and the adapter's key function.

* :class:`ImageHashQuantizer` — the documented default for image outputs: an *average hash* of a
  downsampled grayscale image (hash_size x hash_size cells, each bit = "cell brighter than the
  image's mean"). Limits: it sees only the coarse light/dark layout (not colour, texture or
  content); two images are "the same outcome" when their layouts agree, so temperature acts on
  the distribution of layouts. It is useful only when the model puts appreciable probability on
  a few layouts: with 2^(hash_size^2) cells a diverse model rarely repeats a key, so the exact
  method rarely sees a collision (cost explodes; set ``max_draws``) and the batch method falls to
  cascade level 1 (a uniform pick, i.e. T = 1). For semantic temperature pass a classifier.
* :class:`AdapterKeys` — resolves the adapter's ``quantizer`` option (registered name, quantizer
  object, callable, or None for the default), fits quantizers that need a pilot batch, and turns
  failures on the model's output shape into errors that name the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from ...core.errors import InvalidArgumentTypeError
from ...quantizers import (
    NearestComponentQuantizer,
    Quantizer,
    QuantizerError,
    resolve_quantizer,
)


class ImageHashQuantizer(Quantizer):
    """Average hash of images ``(n, C, H, W)`` (or grayscale ``(n, H, W)``) -> LongTensor keys.

    Each image is averaged over channels, area-downsampled to ``hash_size x hash_size`` and
    thresholded at its own mean: one bit per cell. ``hash_size**2 <= 62`` bits are packed into one
    int64 key ``(n,)``; larger hashes return the bits ``(n, hash_size**2)``. Deterministic,
    invariant to brightness/contrast changes. Default ``hash_size=4`` (16 bits, 65536 cells).
    """

    name = "image_hash"

    def __init__(self, hash_size: int = 4, *, batched: bool = False) -> None:
        super().__init__(batched=batched)
        if isinstance(hash_size, bool) or not isinstance(hash_size, int) or hash_size < 1:
            raise QuantizerError(f"hash_size must be an integer >= 1, got {hash_size!r}")
        self.hash_size = hash_size

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x.unsqueeze(1)
        if x.ndim != 4:
            raise QuantizerError(
                f"the image-hash quantizer takes images (n, C, H, W) or (n, H, W), got samples of "
                f"shape {tuple(x.shape)}; for vectors pass quantizer='grid' (cell_size=...), "
                "'codebook', or a classifier callable"
            )
        gray = x.float().mean(dim=1, keepdim=True)
        small = F.adaptive_avg_pool2d(gray, self.hash_size).flatten(1)  # (n, h*h)
        bits = (small > small.mean(dim=1, keepdim=True)).long()
        if bits.shape[1] <= 62:
            weights = 2 ** torch.arange(bits.shape[1], device=bits.device, dtype=torch.long)
            return (bits * weights).sum(dim=1)
        return bits

    def _repr_options(self) -> str:
        return f"hash_size={self.hash_size}, batched={self.batched}"


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
        from ...core.validation import check_positive_int

        self.model = model
        self.pilot = pilot
        self.fit_samples = check_positive_int(fit_samples, "fit_samples")
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
