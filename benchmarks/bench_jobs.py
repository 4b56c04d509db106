"""Throughput of ``itemp sample`` at world sizes W = 1 and W = 2 (torchrun, gloo, CPU), side by
side in one run, on the shipped demo CALM.

``python -m benchmarks.bench_jobs [--problems 48] [--repeats 2] [--world-sizes 1 2]``

The job: the shipped 12 prompts repeated to ``--problems`` problems, T = 0.5, exact method,
4 outputs of 32 tokens each. Every launch writes its own folder; the results files of all world
sizes must be byte-identical (checked). Reported per W (median over repeats, runs interleaved so
machine load hits both alike):

* wall s: the whole torchrun command, start-up of W Python processes (import torch, load the
  model) included;
* job s: what rank 0 reports for the job itself (folder checks, model load, sampling, merge);
* problems/s on both clocks, and the ratio to W = 1.

Each rank is pinned to one thread (OMP_NUM_THREADS=1), so W ranks use W cores; on a machine
whose cores are shared with other work the gain is smaller than W.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import implicit_temperature

from .launch import torchrun_command

PROMPTS = Path(implicit_temperature.__file__).parent / "demos" / "calm" / "prompts.jsonl"


def make_problems(path: Path, n: int) -> None:
    base = [json.loads(line)["prompt"] for line in PROMPTS.read_text().splitlines()]
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q{i:04d}", "prompt": base[i % len(base)]}) + "\n")


def launch(world: int, problems: Path, out: Path, args: argparse.Namespace) -> tuple[float, float]:
    cmd = [
        *torchrun_command(world),
        "-m",
        "implicit_temperature",
        "sample",
        "calm",
        "--problems",
        str(problems),
        "--temperature",
        "0.5",
        "--method",
        "exact",
        "--num-outputs",
        "4",
        "--max-new-tokens",
        "32",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"W={world} failed:\n{proc.stderr}")
    job = float(re.search(r"in ([0-9.]+) s,", proc.stderr).group(1))
    return wall, job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_jobs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--problems", type=int, default=48, help="problems (default: 48)")
    parser.add_argument("--repeats", type=int, default=2, help="launches per W (default: 2)")
    parser.add_argument(
        "--world-sizes", type=int, nargs="+", default=[1, 2], help="W values (default: 1 2)"
    )
    args = parser.parse_args(argv)
    times: dict[int, list[tuple[float, float]]] = {w: [] for w in args.world_sizes}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        problems = tmp / "problems.jsonl"
        make_problems(problems, args.problems)
        files = {}
        for r in range(args.repeats):
            for w in args.world_sizes:
                out = tmp / f"w{w}-{r}"
                times[w].append(launch(w, problems, out, args))
                files[(w, r)] = (out / "results.jsonl").read_bytes()
        identical = len(set(files.values())) == 1
    n = args.problems
    base_wall = statistics.median(t[0] for t in times[args.world_sizes[0]])
    base_job = statistics.median(t[1] for t in times[args.world_sizes[0]])
    print(
        f"itemp sample calm: {n} problems, T = 0.5, exact, 4 outputs x 32 tokens; "
        f"{os.cpu_count()} CPU cores visible, load average {os.getloadavg()[0]:.1f}; "
        f"median of {args.repeats} launches per W"
    )
    print("| W | wall s | problems/s (wall) | ratio | job s | problems/s (job) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for w in args.world_sizes:
        wall = statistics.median(t[0] for t in times[w])
        job = statistics.median(t[1] for t in times[w])
        print(
            f"| {w} | {wall:.1f} | {n / wall:.2f} | {base_wall / wall:.2f} | {job:.1f} | "
            f"{n / job:.2f} | {base_job / job:.2f} |"
        )
    print(f"results files identical across all launches: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
