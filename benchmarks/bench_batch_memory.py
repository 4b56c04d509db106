"""Peak memory of the batch method against num_outputs (it draws in chunks of outputs).

Each setting runs in a fresh subprocess, which reports its peak resident set size
(``resource.getrusage``); the draw is a 4-outcome categorical (int64 samples, one key each).
Run: ``python -m benchmarks.bench_batch_memory [--unchunked] [num_outputs ...]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

CHILD = """
import resource, sys, time, torch
import implicit_temperature as it
import implicit_temperature.core.api as api
n_out, n = int(sys.argv[1]), int(sys.argv[2])
if int(sys.argv[3]):
    api.BATCH_CHUNK_DRAWS = int(sys.argv[3])
probs = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
def draw(m, generator=None):
    return torch.multinomial(probs, m, replacement=True, generator=generator)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
res = it.temperature_sample(draw, 0.5, method="batch", num_samples=n, num_outputs=n_out,
                            generator=0)
print(res.model_calls, time.perf_counter() - t0, base,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(num_outputs: int, num_samples: int = 200, chunk: int = 0) -> dict[str, float]:
    """Peak RSS (MiB, whole process and above the imports) of one batch run; ``chunk`` > 0
    overrides BATCH_CHUNK_DRAWS (10**12: one call, the method before chunking)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(num_outputs), str(num_samples), str(chunk)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    calls, secs, base_kb, peak_kb = int(out[0]), float(out[1]), int(out[2]), int(out[3])
    return {
        "num_outputs": num_outputs,
        "num_samples": num_samples,
        "chunked": chunk == 0,
        "model_calls": calls,
        "seconds": round(secs, 2),
        "peak_rss_mib": round(peak_kb / 1024, 1),
        "above_imports_mib": round((peak_kb - base_kb) / 1024, 1),
    }


def main(argv: list[str]) -> None:
    """``[--unchunked] num_outputs ...``: --unchunked runs one draw call (before chunking)."""
    chunk = 10**12 if "--unchunked" in argv else 0
    sizes = [int(a) for a in argv if a != "--unchunked"] or [10_000, 100_000, 1_000_000]
    t0 = time.perf_counter()
    for n_out in sizes:
        print(json.dumps(measure(n_out, chunk=chunk)), flush=True)
    print(f"# {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
