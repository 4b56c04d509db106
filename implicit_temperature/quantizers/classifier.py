"""The ``classifier`` quantizer: any function that labels samples with integers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..core.options import is_positive_int
from .base import Quantizer, QuantizerError


def _length(samples: Any) -> int:
    if isinstance(samples, (torch.Tensor, np.ndarray)):
        if samples.ndim == 0:
            raise QuantizerError(
                "samples must have a leading sample dimension (n, ...), got a scalar"
            )
        return int(samples.shape[0])
    try:
        return len(samples)
    except TypeError as exc:
        raise QuantizerError(
            "samples must be a tensor, array or sequence of n samples, got "
            f"{type(samples).__name__}"
        ) from exc


def check_labels(labels: Any, n: int, who: str) -> torch.Tensor:
    """Check what a key function returned for ``n`` samples -> LongTensor ``(n,)`` or ``(n, d)``.

    Accepts integer (or bool) torch tensors and numpy arrays; anything else raises
    :class:`QuantizerError` naming the fix.
    """
    if isinstance(labels, np.ndarray) and labels.dtype != object:
        labels = torch.from_numpy(np.ascontiguousarray(labels))
    if not isinstance(labels, torch.Tensor):
        raise QuantizerError(
            f"{who} must return an integer torch.Tensor (n,) or (n, d), got "
            f"{type(labels).__name__}; return e.g. torch.as_tensor(labels, dtype=torch.long)"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise QuantizerError(
            f"{who} returned dtype {labels.dtype}; keys must be integers: return class ids "
            "(e.g. logits.argmax(-1)), or quantise continuous values first, e.g. "
            "torch.floor(x / cell_size).long() (the 'grid' quantizer)"
        )
    if labels.dim() not in (1, 2) or labels.shape[0] != n:
        raise QuantizerError(
            f"{who} returned shape {tuple(labels.shape)} for {n} samples; it must return one label "
            f"per sample: shape ({n},) or ({n}, d)"
        )
    return labels.long()


class ClassifierQuantizer(Quantizer):
    """Key each sample by the integer label(s) that a user function gives it.

    Options: ``fn`` (required: a callable ``fn(samples) -> labels``, labels an integer or bool
    tensor/array of shape ``(n,)`` or ``(n, d)``), ``batch_size`` (call ``fn`` on at most this many
    samples at a time, for heavy classifiers; default: all at once), ``batched``. The labels are
    checked: floats, a wrong length or a wrong number of dimensions raise :class:`QuantizerError`.
    Samples are passed to ``fn`` unchanged (tensor, array or list), so any object works. With
    ``batched=True`` (tensor or array samples ``(B, n, ...)``), ``fn`` sees them flattened to
    ``(B*n, ...)`` and the keys are reshaped to ``(B, n)`` / ``(B, n, d)``.

    When to use: when "the same outcome" is semantic — a digit classifier on generated digits,
    the class of a generated image, the first word of a generated text, a rule-based bucket. It
    loses whatever the labels ignore: temperature acts on the label distribution and the
    returned sample is a model draw with that label. ``fn`` must be deterministic (same sample,
    same label), or outcomes stop being well defined.
    """

    name = "classifier"

    def __init__(
        self, fn: Callable[[Any], Any], *, batch_size: int | None = None, batched: bool = False
    ) -> None:
        super().__init__(batched=batched)
        if not callable(fn):
            raise QuantizerError(
                f"classifier quantizer: fn must be a callable samples -> integer labels, got "
                f"{type(fn).__name__}"
            )
        if batch_size is not None and not is_positive_int(batch_size):
            raise QuantizerError(
                f"classifier quantizer: batch_size must be an int >= 1 or None, got {batch_size!r}"
            )
        self.fn = fn
        self.batch_size = batch_size
        self._who = f"classifier function {getattr(fn, '__qualname__', type(fn).__name__)}"

    def __call__(self, samples: Any, *, batched: bool | None = None) -> torch.Tensor:
        if self.batched if batched is None else batched:
            x = self._prepare(samples)  # batched samples must be a tensor/array (B, n, ...)
            flat, lead = self._flatten(x, True)
            keys = self._keys(flat)
            return keys.reshape(*lead, *keys.shape[1:])
        return self._keys(samples)

    def _keys(self, samples: Any) -> torch.Tensor:
        n = _length(samples)
        if self.batch_size is None or n <= self.batch_size:
            return check_labels(self.fn(samples), n, self._who)
        step = self.batch_size
        parts = [  # loop over memory-sized chunks, not over samples
            check_labels(self.fn(samples[i : i + step]), min(step, n - i), self._who)
            for i in range(0, n, step)
        ]
        if len({p.shape[1:] for p in parts}) > 1:
            raise QuantizerError(
                f"{self._who} returned labels of different widths for different chunks"
            )
        return torch.cat([p.to(parts[0].device) for p in parts])

    def _repr_options(self) -> str:
        return f"fn={self._who.split()[-1]}, batch_size={self.batch_size}, batched={self.batched}"
