"""Counting equal keys inside each problem, vectorised and without host synchronisation."""

from __future__ import annotations

import torch


def group_counts(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For keys (B, N, d) int64, return ``(counts, group)``, both LongTensor (B, N).

    ``counts[b, i]`` is how many samples of problem b share the key row of sample i;
    ``group[b, i]`` numbers the distinct rows of problem b as 0, 1, ... (in sorted order).

    Rows are sorted lexicographically with one stable sort per key column (a loop over the key
    width d, never over rows or samples), then equal neighbours are grouped. All shapes are fixed,
    so this runs on CUDA without a host sync.
    """
    b, n, d = keys.shape
    if d == 1:
        perm = torch.sort(keys[..., 0], dim=1, stable=True).indices
    else:
        perm = torch.arange(n, device=keys.device).expand(b, n)
        for j in range(d - 1, -1, -1):
            column = keys[..., j].gather(1, perm)
            perm = perm.gather(1, torch.sort(column, dim=1, stable=True).indices)
    ordered = keys.gather(1, perm.unsqueeze(-1).expand(b, n, d))
    starts = torch.ones(b, n, dtype=torch.long, device=keys.device)
    starts[:, 1:] = (ordered[:, 1:] != ordered[:, :-1]).any(-1).long()
    group_sorted = starts.cumsum(1) - 1
    per_group = torch.zeros(b, n, dtype=torch.long, device=keys.device)
    per_group.scatter_add_(1, group_sorted, torch.ones_like(group_sorted))
    counts = torch.empty_like(group_sorted).scatter_(1, perm, per_group.gather(1, group_sorted))
    group = torch.empty_like(group_sorted).scatter_(1, perm, group_sorted)
    return counts, group
