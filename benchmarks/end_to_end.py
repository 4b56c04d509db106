"""End-to-end sections written by the adapters' owners: ``bench_calm`` and ``bench_diffusion``.

Each is a module ``benchmarks.<name>`` with ``run(quick: bool) -> dict``. A module that is missing
or fails to import is reported as "not available: <reason>"; one whose ``run`` raises is
reported as "failed: <reason>". Nothing here fails the benchmark run.

Peak memory (full mode only): the module's ``run(quick=True)`` is run once more in a fresh
subprocess under ``tracemalloc`` (peak Python-heap allocations; torch's CPU tensors bypass it),
with ``torch.cuda.max_memory_allocated`` where CUDA exists, and the subprocess's peak resident
set size (``VmHWM`` from /proc/self/status, which includes torch's tensors and the interpreter
itself). A separate run, so that tracing does not slow the timed one.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
import traceback
from pathlib import Path

MODULES = {
    "bench_calm": "CALM decoding",
    "bench_diffusion": "Diffusion and flow-matching demos",
}


def run_module(name: str, quick: bool) -> dict:
    """``{"status": "ok", "result": ..., "seconds": ...}`` or a status saying why not."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except Exception as exc:  # any import failure is reported, not raised
        return {"status": f"not available: {type(exc).__name__}: {exc}"}
    if not callable(getattr(module, "run", None)):
        return {"status": f"not available: benchmarks.{name} defines no run(quick)"}
    start = time.perf_counter()
    try:
        result = module.run(quick)
    except Exception as exc:  # a failing section must not stop the others
        last = traceback.format_exc(limit=-1).strip().splitlines()[-1]
        return {"status": f"failed: {type(exc).__name__}: {exc}", "where": last}
    seconds = time.perf_counter() - start
    if not isinstance(result, dict):
        return {"status": f"failed: run(quick) returned {type(result).__name__}, not dict"}
    return {"status": "ok", "result": result, "seconds": seconds}


_PROBE = """
import json, resource, sys, tracemalloc
import torch
import benchmarks.{name} as module


def peak_rss_mib():
    # VmHWM: this process's peak resident set (Linux; reset by exec, unlike ru_maxrss)
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if torch.cuda.is_available():
    torch.cuda.reset_peak_memory_stats()
before = peak_rss_mib()
tracemalloc.start()
module.run(True)
_, peak = tracemalloc.get_traced_memory()
cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
print(json.dumps({{"tracemalloc_peak_MiB": peak / 2**20,
                  "cuda_max_memory_allocated_MiB": None if cuda is None else cuda / 2**20,
                  "peak_rss_MiB": peak_rss_mib(),
                  "peak_rss_after_imports_MiB": before}}))
"""


def peak_memory(name: str) -> dict:
    """Peak memory of ``benchmarks.<name>.run(quick=True)`` in a fresh subprocess (MiB)."""
    root = Path(__file__).resolve().parent.parent
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE.format(name=name)],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        return {"status": "failed: the memory probe ran over 600 s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no message"]
        return {"status": f"failed: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict:
    """Run every end-to-end module that is available (and, in full mode, its memory probe)."""
    results = {}
    for name in MODULES:
        entry = run_module(name, quick)
        if entry["status"] == "ok" and not quick:
            entry["memory"] = peak_memory(name)
        results[name] = entry
    return results
