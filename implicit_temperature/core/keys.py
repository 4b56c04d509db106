"""Keys: integer labels that say which samples are the same outcome.

A key function maps samples to a LongTensor: (m,) or (m, d) per call (batched: (B, m) or
(B, m, d)). Two samples are the same outcome iff their key rows are equal. Internally keys are
held as int64 (B, m, d).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch

from .errors import InvalidKeysError, SamplerOutputError
from .samples import Samples

_NUMERIC_KINDS = "biufc"  # numpy dtype kinds torch.from_numpy takes: bool, ints, floats, complex
_KIND_NAMES = {
    "O": "Python objects",
    "U": "strings",
    "S": "bytes",
    "V": "structured records",
    "M": "datetimes",
    "m": "timedeltas",
}

_BIT_VIEW = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}


def exact_values(x: torch.Tensor) -> torch.Tensor:
    """``x`` as int64 values that are equal exactly when the entries are (same shape; complex
    tensors get a trailing dim of 2). Integers and bools keep their values; floats are compared
    by their bit patterns (so 0.0 and -0.0 differ); NaN is refused (:class:`SamplerOutputError`).
    """
    if x.is_complex():
        x = torch.view_as_real(x)
    if not x.is_floating_point():
        return x.long()
    if torch.isnan(x).any():
        raise SamplerOutputError(
            "draw() returned NaN values; fix the sampler (NaN cannot be compared) "
            "or pass a key= function that maps NaN samples to a label of their own"
        )
    if x.dtype not in _BIT_VIEW:
        x = x.double()
    return x.contiguous().view(_BIT_VIEW[x.dtype]).long()


def exact_rows(x: torch.Tensor, lead: int) -> torch.Tensor:
    """Rows of ``x`` (first ``lead`` dims kept, the rest flattened) as int64, compared exactly
    (see :func:`exact_values`)."""
    values = exact_values(x)
    if values.dim() > lead:
        return values.reshape(*values.shape[:lead], -1)
    return values.reshape(*values.shape[:lead], 1)


def integer_tensor(keys: Any, what: str) -> torch.Tensor:
    """``keys`` as a torch integer tensor (numpy arrays converted), else InvalidKeysError whose
    message starts with ``what`` (e.g. "key(samples) must return") and names the fix."""
    if isinstance(keys, np.ndarray):
        keys = torch.from_numpy(keys)
    if not isinstance(keys, torch.Tensor):
        raise InvalidKeysError(f"{what} an integer torch.Tensor, got {type(keys).__name__}")
    if keys.is_floating_point() or keys.is_complex() or keys.dtype == torch.bool:
        raise InvalidKeysError(
            f"{what} integers (integer keys: equal keys = same outcome), got dtype {keys.dtype}; "
            "quantise continuous values first, e.g. torch.round(x / cell_size).long()"
        )
    return keys


class KeyFunction:
    """Applies the user's key function (or the exact default) and checks what it returns.

    ``batched`` selects the expected shapes; the key width d must stay the same across calls.
    Python objects in lists are interned to consecutive ints, consistently for one run.
    """

    def __init__(self, key: Callable[[Any], Any] | None, batched: bool) -> None:
        if key is not None and not callable(key):
            raise TypeError(
                f"key must be a callable samples -> LongTensor or None, got {type(key).__name__}"
            )
        self.key = key
        self.batched = batched
        self.width: int | None = None
        self.squeeze = False  # True when keys were one integer per sample (no d dimension)
        self._intern: dict[Any, int] = {}

    def __call__(self, raw: Any, samples: Samples) -> torch.Tensor:
        if self.key is None:
            keys = self._default(samples)
        else:
            keys = self._check(self.key(raw), samples)
        if self.width is None:
            self.width = int(keys.shape[-1])
        elif keys.shape[-1] != self.width:
            raise InvalidKeysError(
                f"key function returned rows of width {keys.shape[-1]} after width {self.width}; "
                "keys of one run must all have the same width"
            )
        return keys

    def _default(self, samples: Samples) -> torch.Tensor:
        if samples.kind in ("tensor", "ndarray"):
            data = samples.data
            if samples.kind == "ndarray":
                if data.dtype.kind not in _NUMERIC_KINDS:
                    what = _KIND_NAMES.get(data.dtype.kind, "non-numeric")
                    raise SamplerOutputError(
                        f"draw() returned a numpy array of dtype {data.dtype} ({what}), which "
                        "cannot be compared as numbers; return a Python list of the samples "
                        "instead (hashable items are compared by value, e.g. arr.tolist()), or "
                        "pass key= a function mapping the samples to integer labels"
                    )
                data = torch.from_numpy(np.ascontiguousarray(data))
            self.squeeze = data.dim() == 2
            return exact_rows(data, 2)
        self.squeeze = True
        intern = self._intern
        ids = [
            [intern.setdefault(_value_key(obj), len(intern)) for obj in row] for row in samples.data
        ]
        return torch.tensor(ids, dtype=torch.long).unsqueeze(-1)

    def _check(self, keys: Any, samples: Samples) -> torch.Tensor:
        keys = integer_tensor(keys, "key(samples) must return")
        if keys.device.type == "meta":
            raise InvalidKeysError(
                "key(samples) returned keys on the meta device (shapes only, no values); compute "
                "the keys from the samples' values on a real device (cpu or cuda)"
            )
        b, m = samples.num_problems, samples.size
        expected = f"({b}, {m}) or ({b}, {m}, d)" if self.batched else f"({m},) or ({m}, d)"
        lead = (b, m) if self.batched else (m,)
        if tuple(keys.shape[: len(lead)]) != lead or keys.dim() not in (len(lead), len(lead) + 1):
            raise InvalidKeysError(
                f"key(samples) returned shape {tuple(keys.shape)}; expected {expected} for these "
                "samples (one key, or one row of d integers, per sample)"
            )
        keys = keys.long()
        self.squeeze = keys.dim() == len(lead)
        if self.squeeze:
            keys = keys.unsqueeze(-1)
        if not self.batched:
            keys = keys.unsqueeze(0)
        return cast(torch.Tensor, keys)


# objects compared by identity that are nevertheless one object per value
_SINGLETON_TYPES = (
    type(None),
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
)


def _value_key(obj: Any) -> Any:
    """A hashable stand-in for one sample of a list, equal exactly when the samples are equal.

    Tensors and arrays (which hash by identity or not at all) are keyed by dtype, shape and the
    bit pattern of their values; other objects by themselves. Objects that compare by identity
    (no ``__eq__``) are refused: no two draws would ever be the same outcome.
    """
    if isinstance(obj, torch.Tensor):
        if obj.device.type == "meta":
            raise SamplerOutputError(
                "draw() returned tensors on the meta device (no values); load the model's "
                "weights onto a real device before sampling"
            )
        bits = exact_values(obj.detach()).cpu().numpy()
        return ("torch.Tensor", str(obj.dtype), tuple(obj.shape), bits.tobytes())
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidKeysError(
                f"samples are numpy arrays of dtype {obj.dtype}, which cannot be compared by "
                "value; pass key= a function mapping samples to a LongTensor"
            )
        bits = exact_values(torch.from_numpy(np.ascontiguousarray(obj))).numpy()
        return ("numpy.ndarray", str(obj.dtype), obj.shape, bits.tobytes())
    cls = type(obj)
    if (
        cls.__eq__ is object.__eq__  # type: ignore[comparison-overlap]
        and cls.__hash__ is object.__hash__  # type: ignore[comparison-overlap]
        and not isinstance(obj, _SINGLETON_TYPES)
    ):
        raise InvalidKeysError(
            f"samples of type {cls.__name__} compare by identity (the class defines no __eq__), "
            "so no two draws could ever be the same outcome; pass key= a function mapping "
            "samples to a LongTensor, or give the class __eq__ and __hash__"
        )
    try:
        hash(obj)
    except TypeError as exc:
        raise InvalidKeysError(
            f"samples of type {cls.__name__} are not hashable; pass key= a function mapping "
            "samples to a LongTensor"
        ) from exc
    return obj


def normalize_batch_keys(keys: Any) -> torch.Tensor:
    """Check keys given to :func:`select_from_batch`: (B, N) or (B, N, d) integers -> (B, N, d)."""
    keys = integer_tensor(keys, "keys (B, N) or (B, N, d) must be")
    if (
        keys.dim() not in (2, 3)
        or keys.shape[0] < 1
        or keys.shape[1] < 1
        or (keys.dim() == 3 and keys.shape[2] < 1)
    ):
        raise InvalidKeysError(
            f"keys must have shape (B, N) or (B, N, d) with B, N, d >= 1, got {tuple(keys.shape)}; "
            "for one problem use keys[None]"
        )
    keys = keys.long()
    return cast(torch.Tensor, keys.unsqueeze(-1) if keys.dim() == 2 else keys)
