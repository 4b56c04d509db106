"""The ``grid`` quantizer: round every coordinate to a regular grid of cells."""

from __future__ import annotations

from typing import Any

import torch

from .base import Quantizer, QuantizerError, rows

_MAX_CELL_INDEX = 2.0**62  # keep cell indices well inside int64


def _as_option_tensor(value: Any, what: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise QuantizerError(
            f"grid quantizer: {what} must be a number or a tensor of numbers, "
            f"got {type(value).__name__}"
        ) from exc
    if not torch.isfinite(t).all():
        raise QuantizerError(f"grid quantizer: {what} must be finite, got {value!r}")
    return t


class GridQuantizer(Quantizer):
    """Key each sample by the grid cell it falls in: ``floor((x - origin) / cell_size)``.

    Options: ``cell_size`` (float > 0, or a tensor broadcastable to one sample's shape for a
    per-coordinate size), ``origin`` (default 0; same broadcasting; shifts the cell boundaries),
    ``batched``. Input ``(n,)`` gives keys ``(n,)``, input ``(n, ...)`` keys ``(n, d)``
    (``batched=True``: ``(B, n, ...)`` -> ``(B, n)`` / ``(B, n, d)``). Cell ``k`` along a
    coordinate is the half-open interval ``[origin + k*cell_size, origin + (k+1)*cell_size)``.

    When to use: low-dimensional continuous outputs (a few coordinates: 1-D/2-D flow-matching
    toys, summary statistics of an image, a projection of a latent) where "close in every
    coordinate" is the right notion of "same outcome". It loses everything inside a cell:
    temperature acts on the probability of each cell, and the returned sample is a draw from the
    model restricted to its cell. Choosing ``cell_size``: too small and almost every sample is
    alone in its cell (no collisions: the exact sampler gets expensive, the batch method picks
    nearly uniformly); too large and one cell holds everything (temperature has no effect). The
    number of cells grows like (range / cell_size)^d, so for more than a few dimensions use
    ``codebook`` instead.
    """

    name = "grid"

    def __init__(self, cell_size: Any, *, origin: Any = 0.0, batched: bool = False) -> None:
        super().__init__(batched=batched)
        self.cell_size = _as_option_tensor(cell_size, "cell_size")
        if not (self.cell_size > 0).all():
            raise QuantizerError(f"grid quantizer: cell_size must be > 0, got {cell_size!r}")
        self.origin = _as_option_tensor(origin, "origin")

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_complex():
            raise QuantizerError(
                "the 'grid' quantizer needs real samples; use torch.view_as_real(x)"
            )
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        size = self.cell_size.to(device=x.device, dtype=dtype)
        origin = self.origin.to(device=x.device, dtype=dtype)
        opts = f"cell_size/origin of shape {tuple(size.shape)}/{tuple(origin.shape)}"
        if max(size.dim(), origin.dim()) > x.dim() - 1:
            raise QuantizerError(
                f"grid quantizer: {opts} "
                f"have more dimensions than one sample {tuple(x.shape[1:])}; give a number or a "
                "tensor shaped like one sample"
            )
        try:
            cells = torch.floor((x.to(dtype) - origin) / size)
        except RuntimeError as exc:
            raise QuantizerError(
                f"grid quantizer: {opts} do not broadcast against samples of shape "
                f"{tuple(x.shape[1:])}; give a number or a tensor shaped like one sample"
            ) from exc
        if cells.shape != x.shape:
            raise QuantizerError(
                f"grid quantizer: {opts} change the shape of samples {tuple(x.shape[1:])}; "
                "give a number or a tensor shaped like one sample"
            )
        too_far = bool(cells.numel()) and bool(cells.abs().max() >= _MAX_CELL_INDEX)
        if not torch.isfinite(cells).all() or too_far:
            raise QuantizerError(
                "the 'grid' quantizer got non-finite samples or samples too far from origin for "
                "cell_size (cell index beyond 2**62); fix the sampler or use a larger cell_size"
            )
        return rows(cells.long())

    def _repr_options(self) -> str:
        size = self.cell_size.item() if self.cell_size.numel() == 1 else tuple(self.cell_size.shape)
        origin = self.origin.item() if self.origin.numel() == 1 else tuple(self.origin.shape)
        return f"cell_size={size}, origin={origin}, batched={self.batched}"
