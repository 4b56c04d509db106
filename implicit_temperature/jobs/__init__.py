"""Sampling jobs: many problems, one or several temperatures, resumable, sharded over processes.

``itemp sample`` on the command line; the same from Python::

    from implicit_temperature.jobs import run_job
    summary = run_job(model="calm", problems="prompts.jsonl", out="runs/t05",
                      temperatures=[0.5], method="batch", num_outputs=2, seed=0)
    summary.results   # runs/t05/results.jsonl, one line per (problem, temperature)

Under ``torchrun --nproc_per_node W`` every rank runs its shard and rank 0 merges; see
docs/scaling.md. This package imports torch only when a job runs (``itemp --help`` stays fast).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "JobSpec": "spec",
    "JobSummary": "runner",
    "run_job": "runner",
    "Problem": "problems",
    "load_problems": "problems",
    "problem_seed": "seeding",
    "DEMO_MODELS": "models",
    "load_model": "models",
    "JobError": "errors",
    "JobCorruptError": "errors",
    "JobInterrupted": "errors",
    "JobMismatchError": "errors",
    "ProblemFileError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
