"""Counting equal keys inside each problem, vectorised and without host synchronisation."""

from __future__ import annotations

import torch


def group_counts(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For keys (B, N, d) int64, return ``(counts, group)``, both LongTensor (B, N).

    ``counts[b, i]`` is how many samples of problem b share the key row of sample i;
    ``group[b, i]`` labels the distinct rows of problem b: equal labels <=> equal rows (the range
    of the labels is unspecified).

    Rows are sorted lexicographically with one stable sort per key column (a loop over the key
    width d, never over rows or samples), then equal neighbours are grouped. All shapes are fixed,
    so this runs on CUDA without a host sync. On the CPU, where reading a value costs nothing,
    columns whose value ranges fit together in 62 bits are first packed into one code (mixed
    radix, exact), so one sort suffices, or none when the codes are few enough to count in a
    dense table.
    """
    b, n, d = keys.shape
    packed = _pack_columns(keys) if keys.device.type == "cpu" else None
    if packed is not None and b * packed[1] <= _DENSE_LIMIT and packed[1] <= 16 * n:
        # few possible codes: count them in a dense (B, codes) table, no sort at all
        code = packed[0]
        table = torch.zeros(b, packed[1], dtype=torch.long)
        table.scatter_add_(1, code, torch.ones_like(code))
        return table.gather(1, code), code
    if packed is not None or d == 1:
        # one sort of a single code per row; neighbours are compared on the sorted codes
        ordered, perm = torch.sort(
            packed[0] if packed is not None else keys[..., 0], dim=1, stable=True
        )
        differs = ordered[:, 1:] != ordered[:, :-1]
    else:
        perm = torch.arange(n, device=keys.device).expand(b, n)
        for j in range(d - 1, -1, -1):
            column = keys[..., j].gather(1, perm)
            perm = perm.gather(1, torch.sort(column, dim=1, stable=True).indices)
        ordered = keys.gather(1, perm.unsqueeze(-1).expand(b, n, d))
        differs = (ordered[:, 1:] != ordered[:, :-1]).any(-1)
    starts = torch.ones(b, n, dtype=torch.long, device=keys.device)
    starts[:, 1:] = differs.long()
    group_sorted = starts.cumsum(1) - 1
    per_group = torch.zeros(b, n, dtype=torch.long, device=keys.device)
    per_group.scatter_add_(1, group_sorted, torch.ones_like(group_sorted))
    counts = torch.empty_like(group_sorted).scatter_(1, perm, per_group.gather(1, group_sorted))
    group = torch.empty_like(group_sorted).scatter_(1, perm, group_sorted)
    return counts, group


_DENSE_LIMIT = 1 << 22  # most cells of a dense (B, codes) count table


def _pack_columns(keys: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """Mixed-radix code (B, N) of the rows of ``keys`` (B, N, d) and the number of possible
    codes, or None if they would not fit in 62 bits.

    Equal codes <=> equal rows: column j is shifted to start at 0 and weighted by the product of
    the ranges of the columns after it. Reads the d column ranges (CPU tensors only).
    """
    d = keys.shape[-1]
    lo, hi = torch.aminmax(keys.reshape(-1, d), dim=0)
    # Python ints: hi - lo + 1 can exceed int64 (keys spanning both signs, e.g. 64-bit hashes)
    spans = [h - lo_ + 1 for lo_, h in zip(lo.tolist(), hi.tolist(), strict=True)]
    weights, total = [], 1
    for span in reversed(spans):
        weights.append(total)
        total *= span
    if total >= 2**62:
        return None
    if d == 1:
        return keys[..., 0] - lo[0], total
    return (keys - lo) @ torch.tensor(weights[::-1], dtype=torch.long), total
