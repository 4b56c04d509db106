"""Cost of putting every draw call's samples in a random order (``DrawSource._shuffle``).

The core permutes each call's draws per problem so that a ``draw`` returning its i.i.d. samples
sorted or grouped still gives exact results. This measures what that costs on models that cost
nothing (so the overhead is as large as it can be), side by side with the order trusted.

    python -m benchmarks.bench_draw_order [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

import implicit_temperature as it
from implicit_temperature.core import drawing

PROBS = torch.tensor([0.5, 0.3, 0.15, 0.05])


def categorical(m, generator=None):
    return torch.multinomial(PROBS, m, replacement=True, generator=generator)


def images(m, generator=None):  # (m, 3, 32, 32), four distinct images
    k = torch.multinomial(PROBS, m, replacement=True, generator=generator).float()
    return k[:, None, None, None].expand(m, 3, 32, 32).contiguous()


CASES = [
    (
        "exact T=0.5, categorical, 20000 outputs",
        lambda: it.temperature_sample(
            categorical, 0.5, method="exact", num_outputs=20000, generator=0
        ),
    ),
    (
        "batch T=0.5, N=200, categorical, 2000 outputs",
        lambda: it.temperature_sample(
            categorical, 0.5, method="batch", num_outputs=2000, generator=0
        ),
    ),
    (
        "exact T=0.5, 3x32x32 images, 2000 outputs",
        lambda: it.temperature_sample(images, 0.5, method="exact", num_outputs=2000, generator=0),
    ),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_draw_order")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    shuffle = drawing.DrawSource._shuffle
    print("| case | order trusted (ms) | permuted (ms) | ratio |")
    print("|---|---|---|---|")
    try:
        for label, fn in CASES:
            best = []
            for permute in (False, True):
                drawing.DrawSource._shuffle = (
                    shuffle if permute else (lambda self, samples, keys: (samples, keys))
                )
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - t0)
                best.append(min(times))
            print(
                f"| {label} | {best[0] * 1e3:.0f} | {best[1] * 1e3:.0f} | {best[1] / best[0]:.2f} |"
            )
    finally:
        drawing.DrawSource._shuffle = shuffle


if __name__ == "__main__":
    main()
