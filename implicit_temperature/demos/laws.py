"""The small law arithmetic every demo table needs: frequencies, P^(1/T) and total variation."""

from __future__ import annotations

import torch


def frequencies(labels: torch.Tensor, k: int) -> torch.Tensor:
    """float64 (k,): share of each label 0..k-1 among ``labels`` (any shape, any device)."""
    return torch.bincount(labels.reshape(-1).cpu(), minlength=k).double() / labels.numel()


def tempered(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """The law at temperature T, P^(1/T) / Z, float64 (computed in logs, so no overflow at small
    T; zero entries stay zero)."""
    p = torch.as_tensor(p, dtype=torch.float64)
    logp = torch.where(p > 0, p.log(), torch.full_like(p, -torch.inf))
    return torch.softmax(logp / temperature, dim=0)


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """0.5 * sum |p - q| of two laws on the same outcomes."""
    return 0.5 * float((p - q).abs().sum())
