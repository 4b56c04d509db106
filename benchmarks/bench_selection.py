"""Selection speed: ``select_from_batch`` against the published per-row loop.

The published CALM code (``temperature_sampling`` in shaochenze/calm) selects per problem in
Python: turn each of the N sampled K-token chunks into a tuple (one ``.tolist()`` per sample),
count them with ``collections.Counter``, then for n = 1/T, 1/T - 1, ..., 1 keep the chunks seen at
least n times and pick one with ``random.choices`` and weights ``math.comb(count, n)``.
:func:`published_select` restates that loop; :func:`tuned_select` is the same loop with one
``.tolist()`` per row (a fairer baseline for a careful user). Both are only defined at T = 1/n.

Keys: B problems x N samples x K = 4 positions, each position i.i.d. over 4 symbols with
probabilities [.55, .25, .15, .05], so chunks collide often (as CALM chunks do at low T).
Each call is timed with ``time.perf_counter``; the median over repeats is reported.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import time
from collections import Counter

import torch

from implicit_temperature import select_from_batch

SYMBOL_PROBS = torch.tensor([0.55, 0.25, 0.15, 0.05], dtype=torch.float64)
K = 4


def make_keys(b: int, n: int, *, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """LongTensor (B, N, K) of chunks: each position i.i.d. ~ SYMBOL_PROBS."""
    g = torch.Generator().manual_seed(seed)
    flat = torch.multinomial(SYMBOL_PROBS.float(), b * n * K, replacement=True, generator=g)
    return flat.view(b, n, K).to(device)


def _inverse_integer(temperature: float) -> int:
    n = round(1.0 / temperature)
    if n < 1 or abs(n - 1.0 / temperature) > 1e-9:
        raise ValueError(f"the published rule needs T = 1/n for an integer n, got T={temperature}")
    return n


def _choose(counts: Counter, n_initial: int, rng: random.Random) -> tuple:
    for n in range(n_initial, 0, -1):  # the published cascade n, n-1, ..., 1
        candidates = {chunk: c for chunk, c in counts.items() if c >= n}
        if candidates:
            weights = [math.comb(c, n) for c in candidates.values()]
            return rng.choices(list(candidates), weights=weights, k=1)[0]
    raise AssertionError("unreachable: every seen chunk has count >= 1")


def published_select(keys: torch.Tensor, temperature: float, rng: random.Random) -> torch.Tensor:
    """The published per-row loop: chosen chunk per problem, LongTensor (B, K)."""
    n_initial = _inverse_integer(temperature)
    chosen = []
    for row in keys:
        pool = [tuple(chunk.tolist()) for chunk in row]  # one .tolist() per sample, as published
        chosen.append(torch.tensor(_choose(Counter(pool), n_initial, rng), device=keys.device))
    return torch.stack(chosen)


def tuned_select(keys: torch.Tensor, temperature: float, rng: random.Random) -> torch.Tensor:
    """The same loop with one host transfer for the whole batch: LongTensor (B, K)."""
    n_initial = _inverse_integer(temperature)
    chosen = [_choose(Counter(map(tuple, row)), n_initial, rng) for row in keys.tolist()]
    return torch.tensor(chosen, device=keys.device)


def ours_select(keys: torch.Tensor, temperature: float, g: torch.Generator) -> torch.Tensor:
    """``select_from_batch`` plus the gather of the chosen chunks: LongTensor (B, K)."""
    idx = select_from_batch(keys, temperature, generator=g)
    return keys[torch.arange(keys.shape[0], device=keys.device), idx]


def interleaved_times(fns: dict, repeats: int, device: str = "cpu") -> dict[str, list[float]]:
    """Seconds of ``repeats`` calls of each ``fns[name]()``, called in turn (round robin).

    Interleaving exposes every contender to the same background load; each is warmed up once,
    calls are timed with ``time.perf_counter`` (CUDA synchronised) and the garbage collector is
    paused, as ``timeit`` does.
    """

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for fn in fns.values():
        fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - start)
    finally:
        if was_enabled:
            gc.enable()
    return times


def with_threads(n: int, fn):
    """Run ``fn()`` with ``torch.set_num_threads(n)``, restoring the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def run(quick: bool, device: str = "cpu") -> dict:
    """Time the selectors on the grid; returns ``{"rows": [...], ...}`` (seconds).

    ``ours`` runs with torch's default thread count and again with one thread (CPU only): on a
    machine whose cores are busy, multi-threaded kernels can be much slower than one thread.
    The contenders are called in turn, ``repeats`` times each; medians are reported.
    """
    if quick:
        grid_b, grid_n, temps, repeats = (1, 256), (64, 200), (0.5,), 3
    else:
        grid_b, grid_n, temps, repeats = (1, 32, 256), (64, 200, 1000), (0.5, 0.25), 15
    rng = random.Random(0)
    g = torch.Generator(device=device).manual_seed(0)
    threads = torch.get_num_threads()
    rows = []
    for t in temps:
        for b in grid_b:
            for n in grid_n:
                keys = make_keys(b, n, seed=b * 7919 + n, device=device)
                fns = {
                    "ours": lambda k=keys, t=t: ours_select(k, t, g),
                    "tuned": lambda k=keys, t=t: tuned_select(k, t, rng),
                    "published": lambda k=keys, t=t: published_select(k, t, rng),
                }
                if device == "cpu":
                    fns["ours1"] = lambda k=keys, t=t: with_threads(1, lambda: ours_select(k, t, g))
                times = interleaved_times(fns, repeats, device)
                med = statistics.median
                ours, published = times["ours"], times["published"]
                ours1 = times.get("ours1")
                rows.append(
                    {
                        "T": t,
                        "B": b,
                        "N": n,
                        "ours_s": med(ours),
                        "ours_1thread_s": None if ours1 is None else med(ours1),
                        "tuned_s": med(times["tuned"]),
                        "published_s": med(published),
                        "speedup_vs_published": med(published) / med(ours),
                        "speedup_best_vs_published": min(published) / min(ours),
                        "speedup_1thread_vs_published": (
                            None if ours1 is None else med(published) / med(ours1)
                        ),
                        "speedup_vs_tuned": med(times["tuned"]) / med(ours),
                    }
                )
    return {"rows": rows, "device": device, "threads": threads, "repeats": repeats, "K": K}
