"""Diffusion and flow-matching demos: outputs per second and peak memory at T = 1 and T = 0.5.

For each shipped demo pipeline (DDPM with ``DDPMScheduler``, 25 steps; flow matching with
``FlowMatchEulerDiscreteScheduler``, 20 steps; both an MLP on the 2-D mixture) through
``TemperatureSampler``:

* ``T=1``: plain draws (``adapter.draw``), one draw per output;
* ``T=0.5 batch N=200``: ``method="batch", num_samples=200``: 200 draws per output, drawn in
  pipeline calls of 8192 samples, then the core's vectorised selection;
* ``T=0.5 exact``: ``method="exact"``: rounds of the exact sampler (collision of 2 draws).

The digits DDPM (``UNet2DModel`` on 8x8 images, ``DDIMScheduler``, 10 steps, the shipped digit
classifier as quantizer, pipeline calls of 1024 images) gives images/s at T = 1 (plain draws),
T = 0.5 exact, T = 0.5 batch (N = 32) and T = 0.25 exact (:func:`run_digits`; alone:
``python -m benchmarks.bench_diffusion --digits [--quick]``). Its settings run round-robin, five
rounds of about 2000 model draws each, so that a busy spell on a shared machine hits all of them
alike; images/s is given for the best and the median round.

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


DIGITS_STEPS = 10
DIGITS_N = 32


def run_digits(quick: bool) -> dict:
    """images/s and draws/image of the digits DDPM at T = 1, 0.5 (exact, batch) and 0.25."""
    from implicit_temperature.demos.digits import load_classifier, load_digits_pipeline
    from implicit_temperature.quantizers import ClassifierQuantizer

    pipe = load_digits_pipeline()
    sampler = TemperatureSampler(
        pipe,
        quantizer=ClassifierQuantizer(load_classifier()),
        batch_size=1024,
        num_inference_steps=DIGITS_STEPS,
        progress=False,
    )
    # images per run: about the same number of model draws per setting (~2 k); the settings run
    # round-robin, `rounds` times, so a busy spell on a shared machine hits all of them alike;
    # images/s is reported from the best (least disturbed) and the median round
    sizes = {
        "digits: T=1": (1.0, "plain", 2000),
        "digits: T=0.5 exact": (0.5, "exact", 200),
        f"digits: T=0.5 batch N={DIGITS_N}": (0.5, "batch", 60),
        "digits: T=0.25 exact": (0.25, "exact", 15),
    }
    rounds = 1 if quick else 5

    def once(t: float, method: str, m: int, seed: int) -> tuple[float, int]:
        start = time.perf_counter()
        if method == "plain":
            sampler.adapter.draw(m, generator=torch.Generator().manual_seed(seed))
            draws = m
        else:
            draws = sampler.sample(
                t, method=method, num_samples=DIGITS_N, num_outputs=m, generator=seed
            ).draws
        return time.perf_counter() - start, draws

    for t, method, m in sizes.values():  # warm-up
        once(t, method, min(m, 20), 0)
    times: dict[str, list[float]] = {name: [] for name in sizes}
    draws: dict[str, int] = {name: 0 for name in sizes}
    for r in range(rounds):
        for name, (t, method, m) in sizes.items():
            seconds, d = once(t, method, m, r + 1)
            times[name].append(seconds)
            draws[name] += d
    rows = {}
    for name, (_, _, m) in sizes.items():
        best, median = min(times[name]), statistics.median(times[name])
        rows[name] = {
            "images": m,
            "rounds": rounds,
            "images_per_s_best": round(m / best, 1),
            "images_per_s_median": round(m / median, 1),
            "outputs_per_s": round(m / best, 1),
            "draws_per_image": round(draws[name] / (m * rounds), 1),
        }
    base = rows["digits: T=1"]["outputs_per_s"]
    for row in rows.values():
        row["slowdown_vs_T1"] = round(base / row["outputs_per_s"], 1)
    return rows


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
    digits = run_digits(quick)
    return {
        "models": "shipped demo pipelines (MLP denoiser, 2-D mixture); DDPM 25 steps, flow 20; "
        f"digits DDPM (UNet2DModel 8x8, DDIM {DIGITS_STEPS} steps, classifier keys)",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "repeats": repeats,
        "settings": rows,
        "digits": digits,
    }


if __name__ == "__main__":
    import json
    import sys

    quick = "--quick" in sys.argv
    if "--digits" in sys.argv:
        result = {"torch_threads": torch.get_num_threads(), "settings": run_digits(quick)}
    else:
        result = run(quick)
    print(json.dumps(result, indent=2))
