"""The quantizer base class: samples in, integer keys out (equal keys = same outcome).

Every quantizer maps ``(n, ...)`` samples to a LongTensor of keys ``(n,)`` or ``(n, d)``. With
``batched=True`` (given to the constructor, or per call) it maps ``(B, n, ...)`` samples of B
independent problems to ``(B, n)`` or ``(B, n, d)`` keys: the first two dimensions are flattened,
keyed, and restored, so key values mean the same thing in every problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..core.errors import ImplicitTemperatureError


class QuantizerError(ImplicitTemperatureError, ValueError):
    """A quantizer got unusable input or options, or a key callable returned unusable keys."""


def as_tensor(samples: Any, who: str) -> torch.Tensor:
    """``samples`` (tensor, ndarray or nested list of numbers) as a tensor; clear error if not."""
    if isinstance(samples, torch.Tensor):
        return samples
    if isinstance(samples, np.ndarray):
        if samples.dtype == object:
            raise QuantizerError(
                f"{who} needs numeric samples, got a numpy array of Python objects; map them to "
                "numbers first or use the 'classifier' quantizer with a function returning labels"
            )
        return torch.from_numpy(np.ascontiguousarray(samples))
    try:
        return torch.as_tensor(samples)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise QuantizerError(
            f"{who} needs numeric samples (torch.Tensor, numpy array or nested lists of numbers), "
            f"got {type(samples).__name__}; for other objects use the 'classifier' quantizer "
            "with a function returning integer labels"
        ) from exc


class Quantizer:
    """Base class: subclasses implement :meth:`_keys` on unbatched ``(n, ...)`` tensors.

    Call as ``quantizer(samples)`` -> LongTensor ``(n,)`` / ``(n, d)``, or
    ``quantizer(samples, batched=True)`` on ``(B, n, ...)`` -> ``(B, n)`` / ``(B, n, d)``.
    Keys are on the device of the samples. Quantizers that must learn from data first also have
    ``fit(samples)`` and a ``fitted`` attribute; quantizers without ``fit`` are ready at once.
    """

    name: str = ""

    def __init__(self, *, batched: bool = False) -> None:
        if not isinstance(batched, bool):
            raise QuantizerError(f"batched must be True or False, got {batched!r}")
        self.batched = batched

    def __call__(self, samples: Any, *, batched: bool | None = None) -> torch.Tensor:
        x = self._prepare(samples)
        flat, lead = self._flatten(x, self.batched if batched is None else batched)
        keys = self._keys(flat)
        return keys.reshape(*lead, *keys.shape[1:])

    # -- helpers for subclasses -------------------------------------------------------------
    def _prepare(self, samples: Any) -> torch.Tensor:
        return as_tensor(samples, f"the {self.name!r} quantizer")

    def _flatten(self, x: torch.Tensor, batched: bool) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(n, ...) -> itself; (B, n, ...) -> (B*n, ...). Returns the leading shape to restore."""
        if batched:
            if x.dim() < 2:
                raise QuantizerError(
                    f"batched input must have shape (B, n, ...), got {tuple(x.shape)}; pass "
                    "batched=False for unbatched (n, ...) samples"
                )
            return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]), tuple(x.shape[:2])
        if x.dim() < 1:
            raise QuantizerError(
                "samples must have a leading sample dimension (n, ...), got a scalar; use x[None]"
            )
        return x, tuple(x.shape[:1])

    def _keys(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_options()})"

    def _repr_options(self) -> str:
        return f"batched={self.batched}"


def rows(x: torch.Tensor) -> torch.Tensor:
    """(n,) -> (n,) and (n, ...) -> (n, d) with d = prod of the trailing dims (at least 1)."""
    if x.dim() == 1:
        return x
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] == 0:  # samples with no entries are all the same outcome
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    return flat
