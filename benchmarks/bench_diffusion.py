"""Diffusion and flow-matching demos: outputs per second and peak memory at T = 1 and T = 0.5.

For each shipped demo pipeline (DDPM with ``DDPMScheduler``, 25 steps; flow matching with
``FlowMatchEulerDiscreteScheduler``, 20 steps; both an MLP on the 2-D mixture) through
``TemperatureSampler``:

* ``T=1``: plain draws (``adapter.draw``), one draw per output;
* ``T=0.5 batch N=200``: ``method="batch", num_samples=200``: 200 draws per output, drawn in
  pipeline calls of 8192 samples, then the core's vectorised selection;
* ``T=0.5 exact``: ``method="exact"``: rounds of the exact sampler (collision of 2 draws).

outputs/s = outputs / wall-clock seconds (median over repeats, ``time.perf_counter``).
Memory: ``tracemalloc_peak_MiB`` is the peak of Python-heap allocations during one run
(tracemalloc does not see torch's tensor storage); ``rss_growth_MiB`` is how much the process's
peak resident set (``ru_maxrss``) grew during the run — settings run in the order listed, so it
shows when a setting sets a new high-water mark (0 means "no more than before").
"""

from __future__ import annotations

import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable

import torch

from implicit_temperature.demos.mixture import load_ddpm_pipeline as load_ddpm
from implicit_temperature.demos.mixture import load_flow_pipeline as load_flow
from implicit_temperature.plugins import TemperatureSampler

N = 200
T = 0.5


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _measure(fn: Callable[[], tuple[int, int]], repeats: int) -> dict:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs, draws = fn()
        times.append(time.perf_counter() - start)
    rss_before = _rss_mib()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = statistics.median(times)
    return {
        "outputs": outputs,
        "seconds": round(seconds, 4),
        "outputs_per_s": round(outputs / seconds, 1),
        "draws_per_output": round(draws / outputs, 2),
        "tracemalloc_peak_MiB": round(peak / 2**20, 2),
        "rss_growth_MiB": round(_rss_mib() - rss_before, 1),
    }


def run(quick: bool) -> dict:
    """outputs/s, draws/output and peak memory of each setting, for both demo models."""
    plain, exact_outputs, batch_outputs = (2000, 1000, 50) if quick else (20000, 5000, 500)
    repeats = 1 if quick else 3
    rows: dict[str, dict] = {}
    for label, load in (("DDPM", load_ddpm), ("flow", load_flow)):
        pipe = load()
        sampler = TemperatureSampler(pipe, progress=False)

        def plain_draws(sampler=sampler) -> tuple[int, int]:
            sampler.adapter.draw(plain, generator=torch.Generator().manual_seed(0))
            return plain, plain

        def sample(method: str, m: int, sampler=sampler) -> Callable[[], tuple[int, int]]:
            def fn() -> tuple[int, int]:
                res = sampler.sample(T, method=method, num_samples=N, num_outputs=m, generator=0)
                return m, res.draws

            return fn

        rows[f"{label}: T=1"] = _measure(plain_draws, repeats)
        rows[f"{label}: T={T} exact"] = _measure(sample("exact", exact_outputs), repeats)
        rows[f"{label}: T={T} batch N={N}"] = _measure(sample("batch", batch_outputs), repeats)
        rows[f"{label}: T={T} batch N={N}"]["pipeline_calls_of"] = pipe.default_draw_batch_size
    return {
        "models": "shipped demo pipelines (MLP denoiser, 2-D mixture); DDPM 25 steps, flow 20",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "repeats": repeats,
        "settings": rows,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
