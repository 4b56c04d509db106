"""CALM decoding on the shipped demo model (tokens per second at T = 1, 0.5 and 0.25, exact and
batch), and the peak memory of one decode at a real vocabulary (V = 128 256) with and without
slicing the decoder.

Speed. All settings decode B prompts chunk by chunk with the KV cache (``decode_chunks`` under
``generate``), without EOS so every setting produces the same number of tokens:

* ``T=1``: one draw per step and prompt (plain ancestral sampling; exact and batch coincide);
* ``T=0.5 batch N=200``, ``T=0.25 batch N=200``: ``generate(method="batch", num_samples=200)``:
  N draws per step and prompt in one model call, then the core's vectorised selection;
* ``T=0.5 exact``, ``T=0.25 exact``: ``generate(method="exact")``: rounds of the exact sampler
  per step;
* ``draw N=200, keep first``: the same N draws per step and prompt, then the first one is kept:
  the cost of drawing alone. ``batch / keep-first`` is the overhead of the selection rule itself
  (target <= 1.1x), measured with ``estimate_accuracy=False``; the default run also estimates
  each step's TV to P^(1/T) from its pools, reported beside it as its own ratio and ms per step.

Times are medians over repeats (``time.perf_counter``; the settings take turns within each
repeat) on whatever device runs the model (CPU here); tokens/s = B * new tokens / seconds.

Memory. A CALM with the demo's tiny sizes but V = 128 256 (the vocabulary of the real
checkpoints) draws N = 200 chunks for B prompts (one ``CALMAdapter.draw``), in a fresh
subprocess per setting: decoder unsliced (one call on all B * N latents, what the adapter did
before), the default slices (logits of one call <= 256 MiB) and slices of 32 latents. The peak is
the rise of the process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``
just before the draw) over its resident set then; on CUDA, ``torch.cuda.max_memory_allocated``
over the allocation before the draw. The bound is the logits of one decoder call,
``decode_chunk_size * K * V * 4`` bytes (float32).

    python -m benchmarks.bench_calm [--quick]        # JSON of run(quick)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from implicit_temperature.adapters.calm import generate
from implicit_temperature.adapters.calm.adapter import DEFAULT_DECODE_BYTES
from implicit_temperature.adapters.calm.generation import decode_chunks
from implicit_temperature.demos.calm import load_demo_model

N = 200
TEMPERATURES = (0.5, 0.25)
REAL_VOCAB = 128_256
MIB = 2**20


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


def speed(quick: bool) -> dict:
    """Tokens/s of each setting and the batch / keep-first time ratio at T = 0.5."""
    model, tok = load_demo_model()
    batch_size = 8 if quick else 32
    new_tokens = 16 if quick else 64
    repeats = 3 if quick else 5
    prompts = ["cat ", "dog ", "owl ", "fox "]
    ids = torch.cat([tok.encode(prompts[i % 4]) for i in range(batch_size)])

    def gen(t: float, method: str, **extra):
        return lambda: generate(
            model,
            ids,
            temperature=t,
            method=method,
            num_samples=N,
            max_new_tokens=new_tokens,
            generator=0,
            return_dict_in_generate=True,
            **extra,
        )

    settings = {"T=1": gen(1.0, "batch")}
    for t in TEMPERATURES:
        settings[f"T={t} batch N={N}"] = gen(t, "batch")
        settings[f"T={t} batch N={N}, estimate_accuracy=False"] = gen(
            t, "batch", estimate_accuracy=False
        )
        settings[f"T={t} exact"] = gen(t, "exact")
    settings[f"draw N={N}, keep first"] = lambda: decode_chunks(
        model, ids, _keep_first, max_new_tokens=new_tokens, generator=0
    )
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
            "steps": out.steps,
        }
    first = rows[f"draw N={N}, keep first"]["seconds"]
    rule = rows[f"T=0.5 batch N={N}, estimate_accuracy=False"]["seconds"]
    estimated = rows[f"T=0.5 batch N={N}"]["seconds"]
    steps = rows[f"T=0.5 batch N={N}"]["steps"]
    return {
        "model": "shipped demo CALM (K = 4 characters per step, LlamaModel backbone)",
        "device": str(next(model.parameters()).device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "new_tokens_per_prompt": new_tokens,
        "repeats": repeats,
        "settings": rows,
        "batch_over_keep_first": round(rule / first, 3),
        "batch_over_keep_first_target": 1.1,
        "estimated_batch_over_keep_first": round(estimated / first, 3),
        "estimate_ms_per_step": round(1000 * (estimated - rule) / steps, 1),
    }


# -- peak memory at a real vocabulary ------------------------------------------------------------
def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def memory_probe(prompts: int, chunk: int | None, device: str = "cpu") -> dict:
    """One ``draw(N)`` at V = 128 256 with ``decode_chunk_size=chunk`` (0: unsliced); run in a
    fresh process by :func:`memory`. Returns the peak rise in MiB and the bound."""
    from implicit_temperature.adapters.calm import CALMAdapter
    from implicit_temperature.demos.calm import CALM, CALMConfig

    torch.manual_seed(0)
    config = CALMConfig(
        vocab_size=REAL_VOCAB,
        patch_size=4,
        latent_size=4,
        ae_embed_size=8,
        ae_hidden_size=16,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        intermediate_size=32,
        noise_size=4,
        head_hidden_size=16,
        head_num_blocks=1,
    )
    model = CALM(config).eval().to(device)
    latents = prompts * N
    size = latents if chunk == 0 else chunk
    adapter = CALMAdapter(
        model, context=torch.full((prompts, 4), 5, device=device), decode_chunk_size=size
    )
    adapter.draw(2, generator=0)  # warm-up: backbone, allocator
    k, v = config.patch_size, config.vocab_size
    if size is None:
        size = max(1, DEFAULT_DECODE_BYTES // (k * v * 4))
    result = {
        "latents": latents,
        "decode_chunk_size": min(size, latents),
        "decoder_calls": -(-latents // size),
        "bound_MiB": round(min(size, latents) * k * v * 4 / MIB, 1),
        "unsliced_logits_MiB": round(latents * k * v * 4 / MIB, 1),
    }
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        adapter.draw(N, generator=1)
        torch.cuda.synchronize()
        result["peak_MiB"] = round((torch.cuda.max_memory_allocated() - base) / MIB, 1)
        result["measure"] = "torch.cuda.max_memory_allocated"
    else:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current VmRSS
        base = _rss_kib("VmRSS")
        adapter.draw(N, generator=1)
        result["peak_MiB"] = round((_rss_kib("VmHWM") - base) / 1024, 1)
        result["measure"] = "VmHWM rise (peak resident set)"
    return result


def memory(quick: bool, device: str = "cpu") -> dict:
    """Peak memory of one draw of N = 200 chunks for B prompts at V = 128 256: unsliced, default
    slices, 32-latent slices; each setting in a fresh subprocess."""
    prompts = 1 if quick else 4
    root = Path(__file__).resolve().parent.parent
    rows = {}
    for name, chunk in (
        ("unsliced (before)", 0),
        ("default slices", None),
        ("32 latents per call", 32),
    ):
        code = (
            f"import json; from benchmarks.bench_calm import memory_probe; "
            f"print(json.dumps(memory_probe({prompts}, {chunk!r}, {device!r})))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            rows[name] = {"status": f"failed: {tail}"}
            continue
        rows[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"vocab_size": REAL_VOCAB, "prompts": prompts, "num_samples": N, "settings": rows}


def _markdown(sp: dict, mem: dict) -> str:
    from .report import target_note

    lines = [
        f"Decoding speed, {sp['model']}, B = {sp['batch_size']} prompts, "
        f"{sp['new_tokens_per_prompt']} new tokens each, median of {sp['repeats']} interleaved "
        f"repeats, {sp['torch_threads']} torch threads, device {sp['device']}:",
        "",
        "| setting | tokens/s | draws per chunk |",
        "|---|---|---|",
    ]
    for name, row in sp["settings"].items():
        lines.append(f"| {name} | {row['tokens_per_s']:.1f} | {row['draws_per_chunk']:.2f} |")
    lines += [
        "",
        f"batch / keep-first time at T = 0.5, the selection rule's own overhead "
        f"(`estimate_accuracy=False`): {sp['batch_over_keep_first']:.3f} "
        + target_note(sp["batch_over_keep_first"], sp["batch_over_keep_first_target"], "<="),
        "",
        f"With the default per-step accuracy estimate (`res.accuracy` of every step, simulated "
        f"from the step's pools; see docs/algorithms.md): "
        f"{sp['estimated_batch_over_keep_first']:.3f}x keep-first, "
        f"{sp['estimate_ms_per_step']:.1f} ms per decoding step for the B = {sp['batch_size']} "
        "prompts. On this tiny model a step's draws cost less than the estimate's simulation; "
        "`estimate_accuracy=False` skips it where the caller has checked the setting "
        "already.",
        "",
        f"Peak memory of one `draw({mem['num_samples']})` for {mem['prompts']} prompt(s) at "
        f"V = {mem['vocab_size']} (tiny hidden sizes), each in a fresh process:",
        "",
        "| decoder | latents per call | calls | peak rise MiB | bound MiB | unsliced logits MiB |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in mem["settings"].items():
        if "status" in row:
            lines.append(f"| {name} | {row['status']} | | | | |")
            continue
        lines.append(
            f"| {name} | {row['decode_chunk_size']} | {row['decoder_calls']} | "
            f"{row['peak_MiB']:.1f} | {row['bound_MiB']:.1f} | {row['unsliced_logits_MiB']:.1f} |"
        )
    return "\n".join(lines)


def run(quick: bool) -> dict:
    """Speed (tokens/s) and real-vocabulary peak memory; ``markdown`` renders both."""
    sp = speed(quick)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mem = memory(quick, device)
    return {"markdown": _markdown(sp, mem), "speed": sp, "memory": mem}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
