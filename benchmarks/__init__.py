"""Benchmarks for implicit-temperature: cost, accuracy and speed, rerunnable by anyone.

Run ``python -m benchmarks`` (``make bench``; 1.5 to 10 minutes on 2 CPU cores, depending on
what else keeps them busy) or
``python -m benchmarks --quick`` (``make bench-quick``; under a minute). Both write
``docs/benchmarks.md`` (tables: machine, torch version, date, exact commands) and the figures in
``docs/figures/``; ``--out PATH`` writes elsewhere (figures go to ``figures/`` beside PATH).

Sections, one module each, each with ``run(quick: bool) -> dict``:

* :mod:`benchmarks.bench_selection` — ``select_from_batch`` against the published per-row loop.
* :mod:`benchmarks.bench_exact` — the exact sampler's draws against the expectation formula, and
  its sequential draw calls with and without lanes.
* :mod:`benchmarks.bench_accuracy` — total-variation distance to P^(1/T) of the batch method,
  the plug-in estimator and the published rule.
* :mod:`benchmarks.bench_auto` — what ``method="auto"`` picks, and why.
* ``benchmarks.bench_calm`` / ``benchmarks.bench_diffusion`` — end to end, when those land.

Nothing here asserts speed: these are measurements, not tests.
"""
