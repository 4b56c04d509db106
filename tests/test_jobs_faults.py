"""Fault injection on ``itemp sample`` in real processes (issue 20): SIGKILL at injected points
(mid-line, after a line, inside the manifest write, inside the merge) and at seeded random
moments, on 1 and 2 ranks (torchrun, gloo on 127.0.0.1); two processes racing for one folder;
a full disk and a read-only folder (a small tmpfs, where this machine lets us mount one); Ctrl-C
at 0.2, 0.5, 1 and 2 s after start. After each fault: no traceback, and a resume (in this
process, or under torchrun, so the world size changes too) writes a results.jsonl byte for byte
equal to an uninterrupted run's, with no part, temporary or probe file left.

The job is the shipped demo CALM over the 12 shipped prompts at two temperatures (24 units,
batch method, N = 32, 8 new tokens): ~2 s in process. About 2-3 minutes in all on 2 cores,
most of it process start-up, so the module is marked ``faults``: ``make faults`` runs it (and
CI, through .ci/run), ``make test`` / plain ``pytest`` leave it out. The faults injected and
resumes compared are counted in ``COUNTS`` and printed by the last test.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_sigint, torchrun_command

import implicit_temperature
from implicit_temperature.jobs import JobError, run_job

PROMPTS = Path(implicit_temperature.__file__).parent / "demos" / "calm" / "prompts.jsonl"
DRIVER = Path(__file__).parent / "fault_driver.py"
ARGS = [
    "calm",
    "--problems",
    str(PROMPTS),
    "-t",
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
    "--no-progress",
]
KWARGS = dict(
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
ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "MASTER_ADDR": "127.0.0.1",
    "GLOO_SOCKET_IFNAME": "lo",
    "PYTHONPATH": os.pathsep.join([str(Path(implicit_temperature.__file__).parents[1])] + sys.path),
}
pytestmark = pytest.mark.faults
COUNTS = {"faults": 0, "resumes": 0, "tracebacks": 0, "bytes_outside_changed": 0}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("reference")
    return run_job(out=str(out), **KWARGS).results.read_bytes()


def command(out: Path, point: str = "none", n: int = 1, world: int = 1, extra=()) -> list[str]:
    tail = [str(DRIVER), point, str(n), "sample", *ARGS, *extra, "--out", str(out)]
    if world == 1:
        return [sys.executable, *tail]
    return torchrun_command(world, *tail)


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    check_no_traceback(proc.stderr)
    return proc


def check_no_traceback(err: str) -> None:
    """No traceback of ours. torchrun's launcher prints its own when a rank dies (ending in its
    ChildFailedError, with the rank's exit status): that one is the launcher's report."""
    blocks = err.split("Traceback (most recent call last):")[1:]
    ours = [b for b in blocks if "ChildFailedError" not in b]
    COUNTS["tracebacks"] += len(ours)
    assert not ours, err


def resume_and_compare(out: Path, reference: bytes, world: int = 1) -> None:
    if world == 1:
        run_job(out=str(out), **KWARGS)
    else:
        proc = run(command(out, world=world))
        assert proc.returncode == 0, proc.stderr
    assert (out / "results.jsonl").read_bytes() == reference
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "results.jsonl"]
    COUNTS["resumes"] += 1


@pytest.mark.parametrize(
    "point, n",
    [("line-torn", 5), ("line", 9), ("manifest", 1), ("merge", 1), ("merge-unlink", 1)],
)
def test_sigkill_at_an_injected_point_then_resume_is_identical(tmp_path, reference, point, n):
    out = tmp_path / "job"
    proc = run(command(out, point, n))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    COUNTS["faults"] += 1
    if point == "merge-unlink":  # the merged file was already complete
        assert (out / "results.jsonl").read_bytes() == reference
    resume_and_compare(out, reference)


def test_sigkill_at_seeded_random_moments_then_resume_is_identical(tmp_path, reference):
    rng = random.Random(20)
    out = tmp_path / "job"
    for _ in range(3):
        proc = subprocess.Popen(
            command(out), stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True
        )
        time.sleep(rng.uniform(0.5, 4.0))
        os.killpg(proc.pid, signal.SIGKILL)
        check_no_traceback(proc.communicate(timeout=60)[1])
        COUNTS["faults"] += 1
    resume_and_compare(out, reference)


@pytest.mark.parametrize("point, resume_world", [("line-torn@1", 2), ("merge@0", 1)])
def test_two_ranks_killed_at_an_injected_point_then_resume_is_identical(
    tmp_path, reference, point, resume_world
):
    out = tmp_path / "job"
    proc = run(command(out, point, 3 if point.startswith("line") else 1, world=2))
    assert proc.returncode != 0, proc.stderr
    COUNTS["faults"] += 1
    resume_and_compare(out, reference, world=resume_world)


def test_two_processes_racing_for_one_folder_one_wins(tmp_path, reference):
    """The first process's manifest write is delayed 2 s; the second (another seed) starts
    during it and is refused; the first completes to the reference file."""
    out = tmp_path / "job"
    first = subprocess.Popen(
        command(out, "delay-manifest", 20), stderr=subprocess.PIPE, text=True, env=ENV
    )
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # the first one is inside its 2 s manifest write now
    assert not (out / "manifest.json").exists(), "the first one is still writing"
    second = run([*command(out)[:-2], "--seed", "8", "--out", str(out)])
    assert second.returncode == 1 and "seed: 7 in the manifest, 8 now" in second.stderr
    err = first.communicate(timeout=300)[1]
    check_no_traceback(err)
    assert first.returncode == 0, err
    assert (out / "results.jsonl").read_bytes() == reference
    COUNTS["faults"] += 1


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 24 KiB tmpfs (root only): the job needs ~2 x 14 KB at its merge."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(mnt)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def remount(mnt: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mnt)], check=True)


def test_full_disk_gives_one_line_and_a_resume_after_freeing_space_is_identical(
    small_tmpfs, reference, capsys
):
    from implicit_temperature import cli

    out = small_tmpfs / "job"
    rc = cli.main(["sample", *ARGS, "--out", str(out)])
    err = capsys.readouterr().err
    check_no_traceback(err)
    assert rc == 1 and "No space left on device" in err and "to resume" in err, err
    assert len(err.strip().splitlines()) == 1, err
    COUNTS["faults"] += 1
    remount(small_tmpfs, "size=1m")  # space freed
    resume_and_compare(out, reference)


def test_read_only_folder_is_refused_in_one_line_and_resumes_once_writable(
    small_tmpfs, reference, capsys
):
    from implicit_temperature import cli

    remount(small_tmpfs, "size=1m")
    out = small_tmpfs / "job"
    seen = []

    def stop(record):
        seen.append(record)
        if len(seen) == 7:
            raise KeyboardInterrupt

    with pytest.raises(JobError):
        run_job(out=str(out), on_result=stop, **KWARGS)
    remount(small_tmpfs, "ro")
    rc = cli.main(["sample", *ARGS, "--out", str(out)])
    err = capsys.readouterr().err
    check_no_traceback(err)
    assert rc == 1 and "is not writable" in err and len(err.strip().splitlines()) == 1, err
    COUNTS["faults"] += 1
    remount(small_tmpfs, "rw")
    resume_and_compare(out, reference)


def interpreter_start_up() -> float:
    """Seconds this machine's Python takes to start (its ``site`` step included) before it runs
    any line of ours: a signal before then is the interpreter's own (it prints its own
    KeyboardInterrupt), which no package can catch."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=ENV, check=True)
    return time.perf_counter() - start


@pytest.mark.parametrize("after", [0.2, 0.5, 1.0, 2.0])
def test_ctrl_c_soon_after_start_exits_130_in_one_line(tmp_path, reference, after):
    """Ctrl-C ``after`` s after the process starts (not before the interpreter's own start-up is
    over, measured just before: ~0.1 s on an idle machine, more under load)."""
    out = tmp_path / "job"
    after = max(after, 1.2 * interpreter_start_up())
    proc = subprocess.Popen(
        [sys.executable, "-m", "implicit_temperature", "sample", *ARGS, "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=default_sigint,
    )
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    check_no_traceback(err)
    COUNTS["faults"] += 1
    assert proc.returncode in (130, 0), err  # 0: it had finished already
    if proc.returncode == 130:
        assert "interrupted" in err and len(err.strip().splitlines()) == 1, err
    if out.exists():
        resume_and_compare(out, reference)


def test_zz_fault_counts():
    """Printed for the closing note (run with -s): what this module injected and compared."""
    print(f"\nfault suite: {json.dumps(COUNTS)}")
    assert COUNTS["tracebacks"] == 0 and COUNTS["bytes_outside_changed"] == 0
