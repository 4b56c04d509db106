"""Jobs under torchrun (gloo, loopback only): W = 1 and W = 2 give the identical results file,
and a W = 2 run resumes a job that a single process started and was interrupted.

Each launch is ``python -m torch.distributed.run --nproc_per_node W --master-port P ...`` with a
free port on 127.0.0.1, running the shipped demo CALM over the shipped 12-prompt file at two
temperatures (24 units). About 25 s on 2 cores, most of it process start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import torchrun_command

import implicit_temperature
from implicit_temperature.jobs import JobInterrupted, run_job

PROMPTS = Path(implicit_temperature.__file__).parent / "demos" / "calm" / "prompts.jsonl"
ARGS = [
    "calm",
    "--problems",
    str(PROMPTS),
    "--temperature",
    "0.5",
    "1.0",
    "--method",
    "batch",
    "--num-samples",
    "32",
    "--num-outputs",
    "2",
    "--max-new-tokens",
    "8",
    "--seed",
    "7",
    "--device",
    "cpu",
]


def torchrun(world: int, out: Path) -> subprocess.CompletedProcess:
    cmd = torchrun_command(world, "-m", "implicit_temperature", "sample", *ARGS, "--out", str(out))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "GLOO_SOCKET_IFNAME": "lo",
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"torchrun W={world} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_world_sizes_1_and_2_give_identical_results(tmp_path):
    one = torchrun(1, tmp_path / "w1")
    two = torchrun(2, tmp_path / "w2")
    a = (tmp_path / "w1" / "results.jsonl").read_bytes()
    b = (tmp_path / "w2" / "results.jsonl").read_bytes()
    assert a == b
    records = [json.loads(line) for line in a.decode().splitlines()]
    assert len(records) == 24 and [r["id"] for r in records[::2]] == [
        f"p{i:02d}" for i in range(12)
    ]
    assert [r["temperature"] for r in records[:4]] == [0.5, 1.0, 0.5, 1.0]
    assert "24 run on 1 rank(s)" in one.stderr and "rank 0 ran 24)" in one.stderr
    assert "24 run on 2 rank(s)" in two.stderr and "rank 0 ran 12)" in two.stderr, "half each"
    assert not (tmp_path / "w2" / "parts").exists()


def test_two_ranks_resume_a_job_one_process_started(tmp_path):
    out = tmp_path / "job"
    kwargs = dict(
        model="calm",
        problems=str(PROMPTS),
        temperatures=(0.5, 1.0),
        method="batch",
        num_samples=32,
        num_outputs=2,
        max_new_tokens=8,
        seed=7,
        device="cpu",
        progress=False,
    )
    done = []

    def stop_after_nine(record):
        done.append(record)
        if len(done) == 9:
            raise KeyboardInterrupt

    with pytest.raises(JobInterrupted):
        run_job(out=str(out), on_result=stop_after_nine, **kwargs)
    reference = run_job(out=str(tmp_path / "ref"), **kwargs).results.read_bytes()
    proc = torchrun(2, out)
    assert "(9 already done; 15 run on 2 rank(s)" in proc.stderr
    assert (out / "results.jsonl").read_bytes() == reference
