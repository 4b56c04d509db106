"""End-to-end sections written by the adapters' owners: ``bench_calm`` and ``bench_diffusion``.

Each is a module ``benchmarks.<name>`` with ``run(quick: bool) -> dict``. A module that is missing
or fails to import is reported as "not available: <reason>"; one whose ``run`` raises is
reported as "failed: <reason>". Nothing here fails the benchmark run.
"""

from __future__ import annotations

import importlib
import time
import traceback

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


def run(quick: bool) -> dict:
    """Run every end-to-end module that is available."""
    return {name: run_module(name, quick) for name in MODULES}
