"""The small law arithmetic every demo table, benchmark and statistical test needs: frequencies,
P^(1/T) and total variation. One module, so the demos, ``benchmarks/`` and ``tests/`` compute
their targets the same way (it imports only torch)."""

from __future__ import annotations

import torch


def frequencies(labels: torch.Tensor, k: int) -> torch.Tensor:
    """float64 (k,): share of each label 0..k-1 among ``labels`` (any shape, any device)."""
    return torch.bincount(labels.reshape(-1).cpu(), minlength=k).double() / labels.numel()


def tempered(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """The law at temperature T, P^(1/T) / Z, float64, over the last dimension (so a batch of
    laws ``(..., k)`` gives one tempered law per row). Computed in logs, so no overflow at small
    T; zero entries stay zero."""
    p = torch.as_tensor(p, dtype=torch.float64)
    logp = torch.where(p > 0, p.log(), torch.full_like(p, -torch.inf))
    return torch.softmax(logp / temperature, dim=-1)


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """0.5 * sum |p - q| of two laws on the same outcomes."""
    return 0.5 * float((p.double() - q.double()).abs().sum())


def total_variation_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """float64 ``(...)``: the total variation of each pair of laws along the last dimension of
    ``p`` and ``q`` (broadcast together)."""
    return 0.5 * (p.double() - q.double()).abs().sum(dim=-1)
