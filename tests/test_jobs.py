"""Sampling jobs in one process: problems files, seeding, resume, refusals, outputs.

The job runs the shipped demo CALM over the shipped prompts file (12 prompts) with small settings
(batch method, N = 32, 8 new tokens = 2 chunks), so a whole job takes about a second. The
distributed runs (torchrun, W = 1 and W = 2) are in test_jobs_distributed.py.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ALPHA, chi_square_pvalue, tempered

import implicit_temperature
from implicit_temperature.jobs import (
    JobCorruptError,
    JobError,
    JobInterrupted,
    JobMismatchError,
    JobSpec,
    ProblemFileError,
    load_problems,
    problem_seed,
    run_job,
)
from implicit_temperature.jobs import runner as job_runner
from implicit_temperature.jobs.sampling import AdapterRunner, safe_name, save_png

PROMPTS = Path(implicit_temperature.__file__).parent / "demos" / "calm" / "prompts.jsonl"
SMALL = dict(
    model="calm",
    problems=str(PROMPTS),
    temperatures=(0.5,),
    method="batch",
    num_samples=32,
    num_outputs=2,
    max_new_tokens=8,
    seed=0,
    progress=False,
)


def job(out: Path, **changes) -> job_runner.JobSummary:
    return run_job(**{**SMALL, "out": str(out), **changes})


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> bytes:
    """results.jsonl of one uninterrupted run (the file every resumed run must equal)."""
    out = tmp_path_factory.mktemp("reference")
    summary = job(out)
    assert summary.ran == summary.units == 12 and summary.results == out / "results.jsonl"
    return summary.results.read_bytes()


def interrupt_after(k: int):
    seen = []

    def on_result(record):
        seen.append(record["id"])
        if len(seen) == k:
            raise KeyboardInterrupt

    return on_result


def interrupted(out: Path, k: int = 5, **changes) -> Path:
    """Run the job and stop it (as Ctrl-C would) after k results; returns the part file."""
    with pytest.raises(JobInterrupted, match="to resume"):
        job(out, on_result=interrupt_after(k), **changes)
    part = out / "parts" / "rank-0.jsonl"
    assert len(part.read_text().splitlines()) == k and not (out / "results.jsonl").exists()
    return part


# -- problems ----------------------------------------------------------------------------------
def test_problems_jsonl_text_and_count(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "a", "prompt": "cat "}\n\n{"text": "dog ", "ref": 3}\n{"context": "x"}\n')
    probs = load_problems(f)
    assert [(p.id, p.prompt, p.line) for p in probs] == [
        ("a", "cat ", 1),
        ("3", "dog ", 3),
        ("4", "x", 4),
    ]
    assert probs[1].meta == {"ref": 3}
    t = tmp_path / "p.txt"
    t.write_text("cat \n\ndog saw \n")  # trailing spaces are part of the prompt
    assert [(p.id, p.prompt) for p in load_problems(t)] == [("1", "cat "), ("3", "dog saw ")]
    assert [p.id for p in load_problems(3)] == ["0", "1", "2"]
    assert len(load_problems(PROMPTS)) == 12


@pytest.mark.parametrize(
    "bad, line, words",
    [
        ('{"prompt": "cat "}\n{"prompt": "dog "\n', 2, "not valid JSON"),
        ('{"prompt": "cat "}\n\n["dog "]\n', 3, "expected a JSON object"),
        ('{"id": 1, "promt": "cat "}\n', 1, "exactly one of prompt, text, context"),
        ('{"prompt": 5}\n', 1, "must be a string"),
        ('{"id": "a", "prompt": "cat "}\n{"id": "a", "prompt": "dog "}\n', 2, "duplicate id 'a'"),
    ],
)
def test_malformed_problems_line_is_reported_with_its_number(tmp_path, bad, line, words):
    f = tmp_path / "bad.jsonl"
    f.write_text(bad)
    with pytest.raises(ProblemFileError, match=f"bad.jsonl:{line}: .*{words}"):
        load_problems(f)


def test_malformed_problems_stop_the_job_before_any_model_is_loaded(tmp_path, monkeypatch):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"prompt": "cat "}\n{oops}\n')
    monkeypatch.setattr(job_runner, "load_model", lambda *a: pytest.fail("model loaded"))
    with pytest.raises(ProblemFileError, match="bad.jsonl:2"):
        job(tmp_path / "out", problems=str(f))
    assert not (tmp_path / "out").exists(), "nothing is written for a job that cannot start"


# -- seeding and reproducibility ---------------------------------------------------------------
def test_problem_seed_is_stable_and_separates_seed_id_and_temperature():
    s = problem_seed(0, "p00", 0.5)
    assert s == problem_seed(0, "p00", 0.5) and 0 <= s < 2**63
    assert s == 7369882344769206236, "seeds must not change across versions and platforms"
    others = {
        problem_seed(1, "p00", 0.5),
        problem_seed(0, "p01", 0.5),
        problem_seed(0, "p00", 0.25),
        problem_seed(0, "p00", 0.5000001),
    }
    assert s not in others and len(others) == 4


def test_job_output_is_reproducible_and_depends_on_the_seed(tmp_path, reference):
    lines = [json.loads(line) for line in reference.decode().splitlines()]
    assert [r["id"] for r in lines] == [f"p{i:02d}" for i in range(12)], "problem order"
    for r in lines:
        assert r["temperature"] == 0.5 and r["method"] == "batch" and r["draws"] > 0
        assert len(r["outputs"]) == 2 and all(isinstance(o, str) for o in r["outputs"])
        assert set(r) >= {
            "id",
            "temperature",
            "method",
            "plan",
            "outputs",
            "draws",
            "diagnostics",
            "seed",
            "prompt",
        }
        # the demo grammar: continuations are whole chunks of 4 characters (or end early)
        assert all(len(o) <= 8 for o in r["outputs"])
    assert job(tmp_path / "again").results.read_bytes() == reference
    other = job(tmp_path / "seed1", seed=1).results.read_bytes()
    assert other != reference


def test_one_problem_alone_gives_its_line_of_the_full_job(tmp_path, reference):
    """A problem's result depends on (seed, id, T) only, not on the other problems."""
    f = tmp_path / "one.jsonl"
    f.write_text(PROMPTS.read_text().splitlines()[7] + "\n")
    alone = job(tmp_path / "one", problems=str(f)).results.read_text()
    assert alone == reference.decode().splitlines(keepends=True)[7]


# -- resume ------------------------------------------------------------------------------------
def test_interrupted_job_with_a_torn_line_resumes_to_the_identical_file(tmp_path, reference):
    out = tmp_path / "job"
    part = interrupted(out, k=5)
    sixth = reference.decode().splitlines(keepends=True)[5]
    with open(part, "a") as f:  # a write cut by SIGKILL: half a line, no newline
        f.write(sixth[: len(sixth) // 2])
    summary = job(out)
    assert (summary.already_done, summary.ran) == (5, 7) and summary.resumed
    assert summary.results.read_bytes() == reference
    assert not (out / "parts").exists(), "parts are merged away"
    again = job(out)  # resuming a finished job changes nothing
    assert again.ran == 0 and again.results.read_bytes() == reference


def test_resume_with_other_arguments_is_refused(tmp_path):
    out = tmp_path / "job"
    interrupted(out, k=3)
    with pytest.raises(
        JobMismatchError,
        match=r"temperatures: \[0.5\] in the manifest, "
        r"\[0.7\] now",
    ):
        job(out, temperatures=(0.7,))
    with pytest.raises(JobMismatchError, match="seed: 0 in the manifest, 3 now"):
        job(out, seed=3)
    edited = tmp_path / "prompts.jsonl"
    edited.write_text(PROMPTS.read_text().replace('"dog "', '"owl "'))
    with pytest.raises(JobMismatchError, match=r"problems file content \(sha256\)"):
        job(out, problems=str(edited))
    moved = tmp_path / "moved.jsonl"  # the same content elsewhere is the same job
    moved.write_bytes(PROMPTS.read_bytes())
    assert job(out, problems=str(moved)).ran == 9


def test_corrupt_resumes_are_refused(tmp_path):
    out = tmp_path / "job"
    part = interrupted(out, k=4)
    lines = part.read_text().splitlines(keepends=True)
    part.write_text(lines[0] + "garbage\n" + "".join(lines[2:]))
    with pytest.raises(JobCorruptError, match=r"rank-0.jsonl:2 is not a result line"):
        job(out)
    record = json.loads(lines[1])
    record["id"] = "not-a-problem"
    part.write_text(lines[0] + json.dumps(record) + "\n")
    with pytest.raises(JobCorruptError, match="'not-a-problem' at T=0.5, which is not part"):
        job(out)
    (out / "manifest.json").unlink()
    with pytest.raises(JobCorruptError, match="no manifest.json"):
        job(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(JobCorruptError, match="manifest.json is unreadable"):
        job(out)


# -- bad input ---------------------------------------------------------------------------------
def test_output_folder_that_is_not_writable_is_caught_before_sampling(tmp_path, monkeypatch):
    monkeypatch.setattr(job_runner, "load_model", lambda *a: pytest.fail("model loaded"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(JobError, match="is not writable"):
        job(blocker / "out")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(JobError, match="is not writable"):
            job(ro)


def test_unknown_model_adapter_and_quantizer_list_what_is_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(job_runner, "load_model", lambda *a: pytest.fail("model loaded"))
    with pytest.raises(
        JobError,
        match=r"unknown model 'nope'; shipped demo models: calm, ddpm, "
        r"flow.*digits.*package.module:factory",
    ):
        job(tmp_path / "a", model="nope")
    with pytest.raises(JobError, match="cannot find module 'no_such_pkg_xyz'"):
        job(tmp_path / "a", model="no_such_pkg_xyz:make")
    with pytest.raises(Exception, match=r"no adapter named 'nope'.*known: .*calm.*diffusion"):
        job(tmp_path / "a", adapter="nope")
    with pytest.raises(JobError, match=r"unknown quantizer 'nope'; registered quantizers: .*grid"):
        job(tmp_path / "a", adapter_options={"quantizer": "nope"})
    assert not (tmp_path / "a").exists()


def test_prompt_the_model_cannot_take_names_its_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "cat "}\n{"prompt": "cat"}\n')
    with pytest.raises(
        JobError,
        match=r"problem '2' \(line 2\): prompt length 3 is not a "
        "multiple",
    ):
        job(tmp_path / "out", problems=str(f))
    assert not (tmp_path / "out" / "parts").exists(), "checked before the first sample"


def test_bad_arguments_are_refused_by_the_spec():
    with pytest.raises(JobError, match="method 'exact' needs T <= 1"):
        JobSpec(model="calm", problems=1, out="x", temperatures=(0.5, 2.0), method="exact")
    with pytest.raises(JobError, match="temperatures repeat"):
        JobSpec(model="calm", problems=1, out="x", temperatures=(0.5, 0.5))
    with pytest.raises(JobError, match="num_outputs must be an integer >= 1"):
        JobSpec(model="calm", problems=1, out="x", num_outputs=0)


def test_plan_is_forwarded_to_calm_generate(tmp_path):
    first = json.loads(
        job(tmp_path / "p", plan="flat", method="exact").results.read_text().splitlines()[0]
    )
    assert first["plan"] == ["2"] and first["method_used"] == "exact"
    # every decoding step's diagnostics, summed up: collisions are plentiful on the demo
    diag = first["diagnostics"]
    assert diag["steps"] >= 1 and 0 < diag["distinct_share_mean"] <= diag["distinct_share_max"]
    assert diag["distinct_share_max"] < 0.9


# -- other models ------------------------------------------------------------------------------
@pytest.fixture
def die_factory(tmp_path, monkeypatch):
    """``itemp_job_die:make``: a loaded die of the example plugin, as package.module:factory."""
    (tmp_path / "itemp_job_die.py").write_text(
        textwrap.dedent("""
        from itemp_example_plugin.model import LoadedDie

        def make():
            return LoadedDie([0.5, 0.3, 0.15, 0.05])
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "itemp_job_die:make"
    sys.modules.pop("itemp_job_die", None)


def test_factory_model_gives_keys_with_the_tempered_law(tmp_path, die_factory):
    """Exact method through a plugin's adapter: the pooled outputs of 4 problems (4 x 250 keys)
    follow P^(1/T) (chi-square at the suite's ALPHA)."""
    summary = run_job(
        model=die_factory,
        problems=4,
        out=str(tmp_path / "die"),
        temperatures=(0.5,),
        method="exact",
        num_outputs=250,
        progress=False,
    )
    records = [json.loads(line) for line in summary.results.read_text().splitlines()]
    assert [r["id"] for r in records] == ["0", "1", "2", "3"]
    assert all(r["method_used"] == "exact" and "prompt" not in r for r in records)
    keys = torch.tensor([o["key"] for r in records for o in r["outputs"]])
    assert keys.numel() == 1000
    target = tempered(torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64), 0.5)
    assert chi_square_pvalue(keys, target) > ALPHA
    first = [o["key"] for o in records[0]["outputs"]]
    assert first != [o["key"] for o in records[1]["outputs"]], "each problem its own generator"


def test_image_outputs_are_written_as_png_paths(tmp_path):
    from PIL import Image

    from implicit_temperature.core import TemperatureResult

    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    class FakeSampler:
        def sample(self, temperature, **kw):
            return TemperatureResult(
                samples=images,
                keys=torch.arange(3),
                method="batch",
                temperature=temperature,
                draws=60,
                model_calls=1,
                requested_method="batch",
                num_outputs=3,
            )

    spec = JobSpec(model="calm", problems=1, out=str(tmp_path), method="batch", num_outputs=3)
    runner = AdapterRunner(object(), spec, tmp_path)
    runner._shared = FakeSampler()
    from implicit_temperature.jobs.problems import Problem

    result = runner(Problem(id="a/b"), 0.5, seed=1)
    folder = f"images/{safe_name('a/b')}"
    assert folder.startswith("images/a_b-") and safe_name("a_b") == "a_b" != safe_name("a/b")
    assert result["outputs"] == [f"{folder}/T0.5-{k}.png" for k in range(3)]
    back = torch.from_numpy(np.asarray(Image.open(tmp_path / result["outputs"][1])).copy())
    want = (images[1].permute(1, 2, 0) * 255).round()
    assert torch.equal(back, want.to(back.dtype)) and result["draws"] == 60
    gray = tmp_path / "g.png"
    save_png(torch.zeros(1, 4, 5, dtype=torch.uint8), gray)
    assert Image.open(gray).size == (5, 4)


def test_shards_run_independently_then_one_run_merges(tmp_path, reference):
    """The Slurm-array / Ray path: shards 0/3, 1/3, 2/3 (any order, no process group), then a
    plain run finds every unit done and merges to the identical file."""
    out = tmp_path / "job"
    ran = [job(out, shard=(i, 3)) for i in (2, 0, 1)]
    assert [s.ran for s in ran] == [4, 4, 4] and all(s.results is None for s in ran)
    assert sorted(p.name for p in (out / "parts").iterdir()) == [
        "shard-0-of-3.jsonl",
        "shard-1-of-3.jsonl",
        "shard-2-of-3.jsonl",
    ]
    final = job(out)
    assert final.ran == 0 and final.results.read_bytes() == reference
    with pytest.raises(JobError, match="shard index must be in 0 .. count - 1"):
        job(out, shard=(3, 3))


def test_a_write_in_progress_of_another_shard_is_not_counted_or_cut(tmp_path, reference):
    out = tmp_path / "job"
    job(out, shard=(0, 2))
    other = out / "parts" / "shard-1-of-2.jsonl"
    partial = reference.decode().splitlines(keepends=True)[1][:40]
    other.write_text(partial)  # shard 1 is writing its first line right now
    job(out, shard=(0, 2))  # shard 0 restarts: its own file only is checked
    assert other.read_text() == partial
    final = job(out)  # the run without shard cuts the torn line and runs what is missing
    assert final.ran == 6 and final.results.read_bytes() == reference


def test_digits_demo_job_writes_pngs_with_their_digits_or_says_it_is_missing(tmp_path):
    """``digits`` resolves lazily: where the demo is installed a job writes PNGs and the digit
    each shows (the classifier is the quantizer); where it is not, the error says so."""
    import importlib.util

    if importlib.util.find_spec("implicit_temperature.demos.digits") is None:
        with pytest.raises(
            JobError,
            match="model 'digits' is a registered demo, but its "
            "module implicit_temperature.demos.digits is not",
        ):
            run_job(model="digits", problems=2, out=str(tmp_path / "d"), progress=False)
        assert not (tmp_path / "d").exists()
        return
    from PIL import Image

    summary = run_job(
        model="digits",
        problems=2,
        out=str(tmp_path / "d"),
        temperatures=(0.5,),
        method="batch",
        num_samples=16,
        num_outputs=2,
        progress=False,
        adapter_options={"num_inference_steps": 2},
    )
    records = [json.loads(line) for line in summary.results.read_text().splitlines()]
    assert [r["id"] for r in records] == ["0", "1"]
    for r in records:
        assert r["outputs"] == [f"images/{r['id']}/T0.5-{k}.png" for k in range(2)]
        assert all(Image.open(tmp_path / "d" / p).size == (8, 8) for p in r["outputs"])
        assert len(r["keys"]) == 2 and all(0 <= k <= 9 for k in r["keys"])


def test_a_failing_problem_stops_the_job_naming_it_and_keeps_finished_results(
    tmp_path, die_factory
):
    """A draw budget overrun (exact method, max_draws too small) names the problem and leaves a
    resumable folder (manifest, no merged file)."""
    out = tmp_path / "die"
    with pytest.raises(JobError, match=r"problem '0' at T=0.1: DrawBudgetExceeded"):
        run_job(
            model=die_factory,
            problems=2,
            out=str(out),
            temperatures=(0.1,),
            method="exact",
            num_outputs=50,
            max_draws=20,
            progress=False,
        )
    assert not (out / "results.jsonl").exists() and (out / "manifest.json").exists()


def test_a_second_process_on_the_same_folder_is_refused(tmp_path):
    """A live process appending to a part file (another job, or a leftover of a killed launcher)
    holds its lock: a resume refuses to cut or merge under it."""
    import subprocess

    pytest.importorskip("fcntl")
    out = tmp_path / "job"
    part = interrupted(out, k=2)
    with open(part, "a") as f:
        f.write('{"id": "p02", "tempera')  # a torn tail the other process is still writing
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(part),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(JobError, match="is being written by another process"):
            job(out)
        assert part.read_text().endswith('"tempera'), "nothing was cut under the lock"
    finally:
        holder.kill()
        holder.wait()
    assert job(out).ran == 10
