"""Containers for drawn samples: tensors, numpy arrays or Python lists, held as (B, m, ...).

The samplers only need three operations on whatever ``draw`` returns: check its length, pick
entries by index (``gather``) and join two batches (``cat``). Returned samples keep the type the
user's ``draw`` produced (tensor, ndarray or list), so images stay images and token chunks stay
token chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import SamplerOutputError


class Samples:
    """Samples of B problems, m per problem, in the type ``draw`` returned."""

    __slots__ = ("data", "kind")

    def __init__(self, data: Any, kind: str) -> None:
        self.data = data  # tensor/ndarray (B, m, ...) or list of B lists of m objects
        self.kind = kind  # "tensor" | "ndarray" | "list"

    @property
    def num_problems(self) -> int:
        return len(self.data) if self.kind == "list" else int(self.data.shape[0])

    @property
    def size(self) -> int:
        return len(self.data[0]) if self.kind == "list" else int(self.data.shape[1])

    def gather(self, index: torch.Tensor) -> Samples:
        """Entries ``index`` (LongTensor (B, K) of positions in [0, m)) -> Samples (B, K, ...)."""
        if self.kind == "tensor":
            idx = index.to(self.data.device)
            rows = torch.arange(idx.shape[0], device=idx.device).unsqueeze(1)
            return Samples(self.data[rows, idx], "tensor")
        idx_np = index.detach().cpu().numpy()
        if self.kind == "ndarray":
            rows_np = np.arange(idx_np.shape[0])[:, None]
            return Samples(self.data[rows_np, idx_np], "ndarray")
        return Samples(
            [[row[i] for i in sel] for row, sel in zip(self.data, idx_np.tolist(), strict=True)],
            "list",
        )

    def cat(self, other: Samples) -> Samples:
        """Join along the sample dimension: (B, m1, ...) + (B, m2, ...) -> (B, m1 + m2, ...)."""
        if self.kind != other.kind:
            raise SamplerOutputError(
                f"draw() returned {other.kind} after returning {self.kind}; return one type always"
            )
        if self.kind == "tensor":
            if self.data.shape[2:] != other.data.shape[2:]:
                raise SamplerOutputError(
                    f"draw() returned samples of shape {tuple(other.data.shape[2:])} after "
                    f"{tuple(self.data.shape[2:])}; every sample must have the same shape"
                )
            return Samples(torch.cat([self.data, other.data.to(self.data.device)], dim=1), "tensor")
        if self.kind == "ndarray":
            return Samples(np.concatenate([self.data, other.data], axis=1), "ndarray")
        return Samples([a + b for a, b in zip(self.data, other.data, strict=True)], "list")

    def scatter_rows(self, rows: torch.Tensor, num_problems: int) -> Samples:
        """Samples of ``num_problems`` problems whose rows ``rows`` (LongTensor) are these rows;
        the other rows are placeholders (copies of row 0, or None for lists)."""
        if self.kind == "list":
            full: list[Any] = [[None] * self.size for _ in range(num_problems)]
            for i, row in zip(rows.tolist(), self.data, strict=True):
                full[i] = row
            return Samples(full, "list")
        index = torch.zeros(num_problems, dtype=torch.long)
        index[rows.cpu()] = torch.arange(rows.numel())
        if self.kind == "tensor":
            return Samples(self.data[index.to(self.data.device)], "tensor")
        return Samples(self.data[index.numpy()], "ndarray")

    def select_rows(self, rows: torch.Tensor) -> Samples:
        """The problems ``rows`` (LongTensor of indices), in that order: (len(rows), m, ...)."""
        if self.kind == "list":
            return Samples([self.data[i] for i in rows.tolist()], "list")
        if self.kind == "tensor":
            return Samples(self.data[rows.to(self.data.device)], "tensor")
        return Samples(self.data[rows.cpu().numpy()], "ndarray")

    def output(self, batched: bool) -> Any:
        """The user-facing object: (B, K, ...) when batched, else (K, ...) (B must be 1)."""
        if batched:
            return self.data
        return self.data[0]


def cat_samples(parts: list[Samples]) -> Samples:
    """Join sample batches along the sample dimension, pairwise in a balanced way, so that the
    copying is O(total log len(parts)) rather than O(total * len(parts))."""
    while len(parts) > 1:
        parts = [
            parts[i].cat(parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    return parts[0]


def cat_rows(parts: list[Samples]) -> Samples:
    """Join sample batches along the problem dimension: (B1, m, ...) + (B2, m, ...) -> (B1 + B2,
    m, ...); equal m and kinds."""
    kind = parts[0].kind
    if kind == "list":
        return Samples([row for p in parts for row in p.data], "list")
    if kind == "tensor":
        device = parts[0].data.device
        return Samples(torch.cat([p.data.to(device) for p in parts], dim=0), "tensor")
    return Samples(np.concatenate([p.data for p in parts], axis=0), "ndarray")


def as_samples(data: Any) -> Samples:
    """A batched user-facing samples object (tensor, ndarray or list of lists, (B, m, ...)) back
    in a :class:`Samples`."""
    if isinstance(data, torch.Tensor):
        return Samples(data, "tensor")
    if isinstance(data, np.ndarray):
        return Samples(data, "ndarray")
    return Samples(list(data), "list")


def wrap_draw_output(raw: Any, m: int, batched: bool, num_problems: int | None) -> Samples:
    """Check ``raw`` (the return value of ``draw(m)``) and wrap it as :class:`Samples`.

    Unbatched: leading dimension m (tensor, ndarray, list or tuple). Batched: (B, m, ...) with the
    same B on every call (a list of B lists of m objects is accepted too).
    """
    if isinstance(raw, torch.Tensor):
        kind, shape = "tensor", tuple(raw.shape)
        if raw.device.type == "meta":
            raise SamplerOutputError(
                "draw() returned a tensor on the meta device (shapes only, no values), so its "
                "samples cannot be compared; load the model's weights onto a real device (e.g. "
                "model.to_empty(device='cpu') then load_state_dict, or from_pretrained without "
                "device_map='meta') before sampling"
            )
    elif isinstance(raw, np.ndarray):
        kind, shape = "ndarray", raw.shape
    elif isinstance(raw, (list, tuple)):
        kind = "list"
        if batched:
            if not all(isinstance(r, (list, tuple)) for r in raw):
                raise SamplerOutputError(
                    "batched draw(m) must return (B, m, ...) samples: a tensor, an ndarray "
                    "or a list "
                    "of B lists of m samples"
                )
            lens = {len(r) for r in raw}
            shape = (len(raw), lens.pop() if len(lens) == 1 else -1)
        else:
            shape = (len(raw),)
    else:
        raise SamplerOutputError(
            f"draw(m) must return m samples as a torch.Tensor, numpy.ndarray or list, got "
            f"{type(raw).__name__}"
        )
    if batched:
        if len(shape) < 2 or shape[1] != m:
            raise SamplerOutputError(
                f"batched draw({m}) must return samples shaped (B, {m}, ...), got shape {shape}; "
                "put the problem (context) dimension first and the sample dimension second"
            )
        if shape[0] == 0:
            raise SamplerOutputError(
                f"batched draw({m}) returned B=0 problems (shape {shape}); there is nothing to "
                "sample: give at least one problem (prompt, context or condition)"
            )
        if num_problems is not None and shape[0] != num_problems:
            raise SamplerOutputError(
                f"batched draw() returned B={shape[0]} problems after B={num_problems}; "
                "B must not change"
            )
        if kind == "list":
            return Samples([list(r) for r in raw], "list")
        return Samples(raw, kind)
    if len(shape) < 1 or shape[0] != m:
        raise SamplerOutputError(
            f"draw({m}) must return {m} samples (leading dimension {m}), got "
            f"{'shape ' + str(shape) if kind != 'list' else str(shape[0]) + ' items'}; "
            "draw(m) is called with the number of i.i.d. samples it must produce"
        )
    if kind == "list":
        return Samples([list(raw)], "list")
    return Samples(raw[None], kind)
