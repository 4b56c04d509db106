"""CALM decoding speed on the shipped demo model: tokens per second at T = 1 and T = 0.5.

All settings decode B prompts chunk by chunk with the KV cache (``decode_chunks`` under
``generate``), without EOS so every setting produces the same number of tokens:

* ``T=1``: one draw per step and prompt (plain ancestral sampling);
* ``T=0.5 batch N=200``: ``generate(method="batch", num_samples=200)``: N draws per step and
  prompt in one model call, then the core's vectorised selection;
* ``T=0.5 exact``: ``generate(method="exact")``: rounds of the exact sampler per step;
* ``draw N=200, keep first``: the same N draws per step and prompt, then the first one is kept:
  the cost of drawing alone. ``batch / keep-first`` is the overhead of the selection rule itself
  (target <= 1.1x).

Times are medians over repeats (``time.perf_counter``; the settings take turns within each
repeat) on whatever device runs the model (CPU here); tokens/s = B * new tokens / seconds.
"""

from __future__ import annotations

import statistics
import time

import torch

from implicit_temperature.adapters.calm import generate
from implicit_temperature.adapters.calm.generation import decode_chunks
from implicit_temperature.demos.calm import load_demo_model

N = 200
T = 0.5


def _keep_first(adapter, g, out):
    out.draws += adapter.num_problems * N
    return adapter.draw(N, generator=g)[:, 0, :]


def _interleaved_medians(settings: dict, repeats: int) -> dict[str, float]:
    """Median seconds per setting; the settings take turns within each repeat, so a change of
    machine load during the run affects them alike."""
    for fn in settings.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(repeats):
        for name, fn in settings.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def run(quick: bool) -> dict:
    """Tokens/s of each setting and the batch / keep-first time ratio."""
    model, tok = load_demo_model()
    batch_size = 8 if quick else 32
    new_tokens = 16 if quick else 64
    repeats = 3 if quick else 5
    prompts = ["cat ", "dog ", "owl ", "fox "]
    ids = torch.cat([tok.encode(prompts[i % 4]) for i in range(batch_size)])
    settings = {
        "T=1": lambda: generate(
            model,
            ids,
            temperature=1.0,
            max_new_tokens=new_tokens,
            generator=0,
            return_dict_in_generate=True,
        ),
        f"T={T} batch N={N}": lambda: generate(
            model,
            ids,
            temperature=T,
            method="batch",
            num_samples=N,
            max_new_tokens=new_tokens,
            generator=0,
            return_dict_in_generate=True,
        ),
        f"T={T} exact": lambda: generate(
            model,
            ids,
            temperature=T,
            method="exact",
            max_new_tokens=new_tokens,
            generator=0,
            return_dict_in_generate=True,
        ),
        f"draw N={N}, keep first": lambda: decode_chunks(
            model, ids, _keep_first, max_new_tokens=new_tokens, generator=0
        ),
    }
    medians = _interleaved_medians(settings, repeats)
    rows = {}
    for name, fn in settings.items():
        seconds = medians[name]
        out = fn()
        tokens = batch_size * (out.sequences.shape[1] - ids.shape[1])
        rows[name] = {
            "seconds": round(seconds, 4),
            "tokens_per_s": round(tokens / seconds, 1),
            "draws_per_chunk": round(out.draws / (batch_size * out.steps), 2),
        }
    ratio = rows[f"T={T} batch N={N}"]["seconds"] / rows[f"draw N={N}, keep first"]["seconds"]
    return {
        "model": "shipped demo CALM (K = 4 characters per step)",
        "device": str(next(model.parameters()).device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "new_tokens_per_prompt": new_tokens,
        "repeats": repeats,
        "settings": rows,
        "batch_over_keep_first": round(ratio, 3),
        "batch_over_keep_first_target": 1.1,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
